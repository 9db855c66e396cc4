"""Keras-style model summary, with parameters counted as Keras counts them."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int
    non_trainable: int


def keras_param_counts(model: nn.Module) -> ParamCounts:
    """Keras counts BatchNorm's moving mean and variance as non-trainable parameters."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    return ParamCounts(trainable + frozen + stats, trainable, frozen + stats)


def summary_rows(model: nn.Module, input_shape=(1, 1, 48, 48)) -> list[LayerRow]:
    """One row per leaf layer, in call order, with its output shape (batch dim as None)."""
    rows, hooks = [], []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, _inputs, output):
        counts = keras_param_counts(module)
        shape = (None, *output.shape[1:]) if isinstance(output, torch.Tensor) else ()
        rows.append(LayerRow(names[module], type(module).__name__, shape, counts.total))

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def network_rows(pattern: str = "*") -> list[tuple[str, str, str]]:
    """(name, Keras-style parameter count, description) of each registered network matching
    `pattern` (an ensemble has its members' parameters)."""
    from ferlab.models.registry import create, describe, list_models

    standalone = list_models(pattern, standalone=True)
    return [
        (n, f"{keras_param_counts(create(n)).total:,}" if n in standalone else "members'",
         describe(n))
        for n in list_models(pattern)
    ]  # fmt: skip
