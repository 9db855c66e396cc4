"""Per-layer gradient norms: where a deep network's training signal grows or dies.

Deep stacks of Dense + BatchNorm have gradients that grow geometrically towards the input at
initialization (Yang et al. 2019, "A Mean Field Theory of Batch Normalization"), which is one
reason the study's 51-layer DNN may fail to learn where a shallow one of the same size does.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.models import weight_layers


def gradient_norms(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """(layers,) the L2 norm of d loss / d weight of each weight layer for one batch, in the
    training mode (BatchNorm on batch statistics, dropout on) that training sees. Computed on
    a copy: the model's BatchNorm statistics, mode and gradients stay as they were."""
    twin = copy.deepcopy(model).train()
    for p in twin.parameters():
        p.requires_grad_(True)
        p.grad = None
    F.cross_entropy(twin(x), labels).backward()
    return np.array([float(m.weight.grad.norm()) for m in weight_layers(twin).values()])
