"""Saliency maps: which pixels drive a decision. Model + batch in, arrays out (captum)."""

import numpy as np
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from ferlab.errors import FerlabError
from ferlab.explain.methods import METHODS
from ferlab.models import cam_layer


def _cam_layer(model: nn.Module) -> nn.Module:
    layer = cam_layer(model)
    if layer is None:
        raise FerlabError("Grad-CAM needs a model with conv layers (it names none to explain)")
    return layer


def default_method(model: nn.Module) -> str:
    """Grad-CAM for a model that names a CAM layer, input gradients for one without."""
    return "gradcam" if cam_layer(model) is not None else "gradient"


def saliency_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    method: str = "gradient",
    layer: nn.Module | None = None,
) -> np.ndarray:
    """(B, 1, H, W) faces in [0, 1] and (B,) class ids -> (B, H, W) non-negative maps.

    gradient: |d score / d pixel| (Simonyan et al.); smoothgrad: its mean over noisy copies;
    integrated-gradients: |IG| from a black face; gradcam: ReLU(Grad-CAM) of the layer the
    model names as its CAM layer (or `layer`), upsampled to the input size."""
    if method not in METHODS:
        raise FerlabError(f"unknown saliency method '{method}'; choose one of {', '.join(METHODS)}")
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    if method == "gradient":
        maps = Saliency(model).attribute(x, target=target, abs=True)
    elif method == "smoothgrad":
        maps = NoiseTunnel(Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=16, stdevs=0.1, target=target, abs=True
        )
    elif method == "integrated-gradients":
        maps = (
            IntegratedGradients(model)
            .attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=32)
            .abs()
        )
    else:
        cam = LayerGradCam(model, layer or _cam_layer(model)).attribute(
            x, target=target, relu_attributions=True
        )
        maps = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")
    return maps.detach().sum(1).clamp_min(0).cpu().numpy()


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each map to [0, 1] (an all-zero map stays zero)."""
    peak = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1)
    return np.divide(maps, peak, out=np.zeros_like(maps, dtype=float), where=peak > 0)


def class_average_maps(
    model: nn.Module,
    faces: torch.Tensor,
    labels: np.ndarray,
    n_classes: int,
    method: str = "gradient",
    batch_size: int = 64,
) -> np.ndarray:
    """(K, H, W): the mean normalized map over the faces of each class, for that class."""
    sums = np.zeros((n_classes, *faces.shape[-2:]))
    counts = np.zeros(n_classes)
    for i in range(0, len(faces), batch_size):
        x, y = faces[i : i + batch_size], torch.as_tensor(labels[i : i + batch_size])
        maps = normalize_maps(saliency_maps(model, x, y, method))
        np.add.at(sums, y.numpy(), maps)
        counts += np.bincount(y.numpy(), minlength=n_classes)
    return sums / np.maximum(counts, 1)[:, None, None]


def masked_faces(faces: np.ndarray, maps: np.ndarray, keep: float = 0.25) -> np.ndarray:
    """Faces with all but their `keep` most salient pixels (a fixed count, ties broken by
    position, so a map that is mostly zero still keeps only that many) set to zero."""
    flat = maps.reshape(len(maps), -1)
    k = round(keep * flat.shape[1])
    top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return np.where(mask.reshape(maps.shape), faces, 0)
