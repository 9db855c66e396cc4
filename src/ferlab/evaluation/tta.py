"""Test-time augmentation: average the softmax over flipped and shifted views of each face."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.checkpoint import face_batch, predict_proba

CROP = 44  # crops of 44x44 at the centre and corners


def tta_views(x: torch.Tensor, mode: str, native: int = 0) -> list[torch.Tensor]:
    """(B, 1, 48, 48) -> list of views. mode: none | flip | flip+crops. flip+crops: the plain
    view and the four corner crops, resized back to 48x48 for a whole-face model; a model
    trained on crops of side `native` gets the centre and corner crops at that size (its own
    plain view is the centre crop)."""
    views = [x]
    if mode == "flip+crops":
        crop = native or CROP
        size, m = x.shape[-1], x.shape[-1] - crop
        corners = ((0, 0), (0, m), (m, 0), (m, m))
        for top, left in ((m // 2, m // 2), *corners) if native else corners:
            view = x[..., top : top + crop, left : left + crop]
            if not native:
                view = F.interpolate(view, size=(size, size), mode="bilinear", align_corners=False)
            views.append(view)
        if native:
            views = views[1:]  # the centre crop is what the model sees of the plain view
    if mode in ("flip", "flip+crops"):
        views = views + [v.flip(-1) for v in views]
    return views


@torch.no_grad()
def predict_proba_tta(
    model: nn.Module,
    faces: np.ndarray,
    mode: str = "flip+crops",
    batch_size: int = 256,
    device: str = "cpu",
) -> np.ndarray:
    """(N, 48, 48) preprocessed uint8 -> (N, classes) mean softmax over the TTA views."""
    if not len(faces):
        return predict_proba(model, faces)  # the empty (0, classes) answer lives there
    model.eval().to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(faces), batch_size):
        x = face_batch(faces[i : i + batch_size], device)
        views = tta_views(x, mode, getattr(model, "input_crop", 0))
        probs = [torch.softmax(model(v).float(), 1) for v in views]
        out.append(torch.stack(probs).mean(0).cpu().numpy())
    return np.concatenate(out)
