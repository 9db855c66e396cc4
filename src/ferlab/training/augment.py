"""Batch augmentation on tensors with kornia: one call per batch, no per-image Python."""

import kornia.augmentation as K
from torch import nn


def build_augment(strength: str, crop: int = 0) -> nn.Module:
    """(B, 1, 48, 48) float in [0, 1] -> randomly shifted/flipped/rotated/erased, then cut to a
    random crop x crop window when crop is set (the 5-crop TTA looks at the same windows)."""
    tail = [K.RandomCrop((crop, crop))] if crop and crop < 48 else []
    if strength == "none":
        return nn.Sequential(*tail) if tail else nn.Identity()
    shift, degrees, scale, erase = {
        "light": (0.05, 5.0, (0.95, 1.05), 0.0),
        "standard": (0.1, 10.0, (0.9, 1.1), 0.25),
        "strong": (0.12, 15.0, (0.85, 1.15), 0.5),
    }[strength]
    steps = [
        K.RandomHorizontalFlip(),
        K.RandomAffine(
            degrees=degrees, translate=(shift, shift), scale=scale, p=0.8, padding_mode="reflection"
        ),
    ]
    if erase:
        steps.append(K.RandomErasing(scale=(0.02, 0.12), ratio=(0.3, 3.3), p=erase))
    return nn.Sequential(*steps, *tail)
