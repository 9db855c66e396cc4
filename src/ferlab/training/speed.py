"""Measured training speed, so a wall-clock budget can be turned into a schedule."""

import math
import time

import torch
import torch.nn.functional as F

from ferlab.models import create


def train_images_per_second(
    model: str,
    model_args: dict | None = None,
    batch_size: int = 128,
    side: int = 48,
    steps: int = 3,
) -> float:
    """Images/s of forward + backward + AdamW steps on random input (fp32, channels_last)."""
    net = create(model, **(model_args or {})).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.rand(batch_size, 1, side, side).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch_size,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    step()  # the first step allocates and picks kernels
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def plan_epochs(
    images_per_second: float,
    n_train: int,
    minutes: float,
    max_epochs: int = 200,
    min_epochs: int = 5,
) -> tuple[int, float]:
    """(epochs, fraction of each epoch) that fill `minutes` of training, so the learning-rate
    schedule ends when the budget does; 15% is kept for validation and data handling. A short
    budget is cut into at least `min_epochs` partial epochs (each a fresh shuffle), so its
    training curves still have points to show."""
    epochs_float = images_per_second * minutes * 60 * 0.85 / max(n_train, 1)
    if epochs_float >= max_epochs:
        return max_epochs, 1.0
    epochs = max(min_epochs, math.ceil(epochs_float))
    return epochs, max(0.01, min(1.0, epochs_float / epochs))
