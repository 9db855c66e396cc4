"""Reading a layer's output with a forward hook that is always released."""

from contextlib import contextmanager, suppress

import torch
from torch import nn

from ferlab.errors import FerlabError
from ferlab.models import explainable_layers


class _Stop(Exception):
    """Raised by the hook to skip the layers after the one we read."""


def find_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        usable = ", ".join(list(explainable_layers(model))[:12])
        raise FerlabError(
            f"no layer '{name}' in this model; usable layers include: {usable} "
            "(see `ferlab layers MODEL_REF`)"
        )
    return modules[name]


@contextmanager
def capture(layer: nn.Module, stop: bool = False):
    """Yields a dict whose 'out' is the layer's output after a forward pass.

    With stop=True the forward pass ends at the layer (cheaper for early layers)."""
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        store["out"] = output
        if stop:
            raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def layer_output(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's output for input x, running the model only as far as that layer."""
    with capture(layer, stop=True) as store, suppress(_Stop):
        model(x)
    return store["out"]


def layer_input(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the layer receives for input x (e.g. the pre-activation of a ReLU), copied before
    an in-place layer could overwrite it; the forward pass stops there."""
    store: dict[str, torch.Tensor] = {}

    def hook(_module, inputs):
        store["in"] = inputs[0].clone()
        raise _Stop

    handle = layer.register_forward_pre_hook(hook)
    try:
        with suppress(_Stop):
            model(x)
    finally:
        handle.remove()
    return store["in"]
