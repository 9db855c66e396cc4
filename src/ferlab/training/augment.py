"""Batch augmentation on tensors with kornia: one call per batch, no per-image Python."""

import kornia.augmentation as K
import torch
import torch.nn.functional as F
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


class SmallFace(nn.Module):
    """A share `p` of the batch shrunk to a face of 12-32 px and blown up again, as a detector
    hands the model a small face in a photo: one size per batch, drawn from torch's RNG."""

    def __init__(self, p: float, sizes: tuple[int, int] = (12, 32)):
        super().__init__()
        self.p, self.sizes = p, sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pick = torch.rand(len(x), device=x.device) < self.p
        if not pick.any():
            return x
        side = int(torch.randint(self.sizes[0], self.sizes[1] + 1, ()).item())
        small = F.interpolate(x[pick], size=(side, side), mode="area")
        out = x.clone()
        out[pick] = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


class GrayJPEG(nn.Module):
    """kornia's differentiable JPEG on a gray batch (it codes 3 channels)."""

    def __init__(self, p: float, quality: tuple[float, float] = (30.0, 90.0)):
        super().__init__()
        self.jpeg = K.RandomJPEG(jpeg_quality=quality, p=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.jpeg(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)


def equalize_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> each face histogram-equalized on 256 gray levels with the
    formula of cv2.equalizeHist, which the photo path applies to every face it classifies:
    a face degraded on the batch is equalized again, as it would be at prediction time."""
    b = len(x)
    levels = x.mul(255).round_().clamp_(0, 255).long().view(b, -1)
    ones = torch.ones_like(levels, dtype=torch.float)
    hist = torch.zeros(b, 256, device=x.device).scatter_add_(1, levels, ones)
    cdf = hist.cumsum(1)
    n = levels.shape[1]
    first = cdf.gather(1, (hist > 0).float().argmax(1, keepdim=True))  # the darkest level's count
    scale = 255.0 / (n - first).clamp_(min=1)
    lut = ((cdf - first) * scale).round_().clamp_(0, 255)
    flat = (first == n).squeeze(1)  # a face of one gray level: cv2 leaves it as it is
    lut[flat] = torch.arange(256, device=x.device, dtype=lut.dtype)
    return lut.gather(1, levels).div_(255).view_as(x)


def build_photo_augment(
    framing: float = 0.0,
    small_face: float = 0.0,
    blur: float = 0.0,
    jpeg: float = 0.0,
    photometric: float = 0.0,
) -> nn.Module:
    """What a detector's crop of a photo does to a face, each with its probability: framing
    jitter (scale 0.85-1.2, shift 8%, rotation 15 degrees, beyond the standard affine), the
    small-face path (down to 12-32 px and back), Gaussian blur, JPEG at quality 30-90, and
    light (gamma 0.6-1.6, contrast 0.7-1.3, a linear gradient of light across the face). All
    zero: no step. Training equalizes a face again after these (FERModule), as prediction
    equalizes every face it is handed."""
    steps = []
    if framing:
        steps.append(
            K.RandomAffine(
                degrees=15.0, translate=(0.08, 0.08), scale=(0.85, 1.2), p=framing,
                padding_mode="border",
            )
        )  # fmt: skip
    if small_face:
        steps.append(SmallFace(small_face))
    if blur:
        steps.append(K.RandomGaussianBlur((5, 5), (0.3, 1.2), p=blur))
    if jpeg:
        steps.append(GrayJPEG(jpeg))
    if photometric:
        steps += [
            K.RandomGamma((0.6, 1.6), p=photometric),
            K.RandomContrast((0.7, 1.3), p=photometric),
            # Light from one side: unlike gamma and contrast, equalization does not undo it.
            K.RandomLinearIllumination(gain=(0.05, 0.3), p=photometric),
        ]
    return nn.Sequential(*steps) if steps else nn.Identity()
