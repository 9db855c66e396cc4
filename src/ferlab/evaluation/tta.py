"""Test-time augmentation: average the softmax over flipped and shifted views of each face."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.checkpoint import face_batch, predict_proba

CROP = 44  # crops of 44x44 at the centre and corners, resized back to 48x48


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """(B, 1, 48, 48) -> list of views, each (B, 1, 48, 48). mode: none | flip | flip+crops."""
    views = [x]
    if mode == "flip+crops":
        size, m = x.shape[-1], x.shape[-1] - CROP
        for top, left in ((m // 2, m // 2), (0, 0), (0, m), (m, 0), (m, m)):
            crop = x[..., top : top + CROP, left : left + CROP]
            views.append(
                F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
            )
        views = views[1:]  # the centre crop stands in for the plain view
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
        probs = [torch.softmax(model(v).float(), 1) for v in tta_views(x, mode)]
        out.append(torch.stack(probs).mean(0).cpu().numpy())
    return np.concatenate(out)
