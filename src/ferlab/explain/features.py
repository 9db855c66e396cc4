"""What a conv layer computes: its feature maps for a face, and the inputs that excite
each of its filters most (gradient ascent from noise)."""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.errors import FerlabError
from ferlab.explain.hooks import find_layer, layer_input, layer_output
from ferlab.models import explainable_layers


def layer_names(model: nn.Module, input_shape=(1, 1, 48, 48)) -> list[tuple[str, tuple]]:
    """(name, output shape) of every layer the explain commands accept, plus the logits."""
    rows = []
    model.eval()
    with torch.no_grad():
        x = torch.zeros(input_shape)
        for name, layer in explainable_layers(model).items():
            rows.append((name, tuple(layer_output(model, layer, x).shape[1:])))
        rows.append(("logits", tuple(model(x).shape[1:])))
    return rows


@torch.no_grad()
def activations(model: nn.Module, x: torch.Tensor, layer_name: str) -> np.ndarray:
    """(B, 1, 48, 48) -> (B, C, h, w): the output of every filter of the layer."""
    model.eval()
    out = layer_output(model, find_layer(model, layer_name), x)
    if out.ndim != 4:
        raise FerlabError(f"layer '{layer_name}' does not output feature maps")
    return out.float().cpu().numpy()


@dataclass
class FilterImages:
    images: np.ndarray  # (F, 48, 48) in [0, 1]
    filters: list[int]
    initial: np.ndarray  # (F,) mean activation of the starting noise
    final: np.ndarray  # (F,) mean activation of the result


def _objective(
    model: nn.Module,
    layer_name: str,
    x: torch.Tensor,
    filters: torch.Tensor,
    pre_activation: bool = False,
):
    """(F,) mean activation of filter filters[i] for input x[i] (or logit, for 'logits').

    With pre_activation, a filter of an activation layer that is off over the whole map is
    scored by its input instead: a ReLU that is off passes no gradient, so ascent on its
    output alone could never start."""
    if layer_name == "logits":
        return model(x).gather(1, filters[:, None])[:, 0]
    layer = find_layer(model, layer_name)
    rows = torch.arange(len(filters))
    if pre_activation and isinstance(layer, nn.ReLU | nn.LeakyReLU):
        z = layer_input(model, layer, x)
        _check_filters(layer_name, z, filters)
        z = z[rows, filters]  # (F, h, w)
        post = F.leaky_relu(z, getattr(layer, "negative_slope", 0.0)).mean((1, 2))
        return torch.where(post > 0, post, z.mean((1, 2)))
    out = layer_output(model, layer, x)
    _check_filters(layer_name, out, filters)
    return out[rows, filters].mean((1, 2))


def _check_filters(layer_name: str, out: torch.Tensor, filters: torch.Tensor) -> None:
    if out.ndim != 4:
        raise FerlabError(f"layer '{layer_name}' does not output feature maps")
    n, asked = out.shape[1], int(filters.max())
    if asked >= n:
        raise FerlabError(f"layer '{layer_name}' has {n} filters; asked for filter {asked}")


def filter_images(
    model: nn.Module,
    layer_name: str,
    filters: list[int],
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 1e-3,
    jitter: int = 2,
    blur_every: int = 8,
    seed: int = 0,
) -> FilterImages:
    """Gradient ascent on the input, all filters at once as one batch.

    Normalized gradient steps with L2 decay, random jitter and periodic blur keep the
    images readable (Yosinski et al.). A filter of an activation layer that is off everywhere
    climbs on its input until it turns on; `initial` and `final` are the layer's output."""
    model.eval()
    trainable = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    idx = torch.as_tensor(filters)
    x = 0.5 + 0.1 * torch.randn(len(filters), 1, 48, 48, generator=g)
    with torch.no_grad():
        initial = _objective(model, layer_name, x, idx).float().numpy()
    x.requires_grad_(True)
    try:
        for step in range(steps):
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist()
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            score = _objective(model, layer_name, shifted, idx, pre_activation=True)
            (grad,) = torch.autograd.grad(score.sum(), x)
            with torch.no_grad():
                grad = grad / (grad.flatten(1).std(1).view(-1, 1, 1, 1) + 1e-8)
                x += lr * grad
                x -= l2 * (x - 0.5)
                if blur_every and step % blur_every == blur_every - 1:
                    x.copy_(_blur(x))
                x.clamp_(0, 1)
    finally:  # the caller's model comes back as it was given
        for p, flag in zip(model.parameters(), trainable, strict=True):
            p.requires_grad_(flag)
    with torch.no_grad():
        final = _objective(model, layer_name, x, idx).float().numpy()
    return FilterImages(x.detach()[:, 0].numpy(), list(filters), initial, final)


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0])
    kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel)
