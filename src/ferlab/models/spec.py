"""What a model sees, readable without torch: its registered config (ModelConfig), the input
spec a card resolves (InputSpec) and the one step from faces to a model's batch (face_batch).
The core install (ONNX Runtime, no torch) runs the shipped models with these alone."""

from dataclasses import dataclass

import numpy as np

from ferlab.data.preprocess import Preprocess

# Equalized faces are spread over 0..1 with mean ~0.5 and std ~0.29; centring in the model
# keeps callers (saliency, prediction) working on plain [0, 1] pixels.
PIXEL_MEAN, PIXEL_STD = 0.5, 0.29


def face_batch(faces):
    """(B, 48, 48) uint8 faces, prepared as the model card says -> the batch every model takes,
    (B, 1, 48, 48) float32 in [0, 1]: the one step from faces to a model's input, for training
    (torch tensors in and out), prediction and export (numpy)."""
    if not isinstance(faces, np.ndarray):  # a torch tensor (training): torch in, torch out
        return faces.unsqueeze(1).float().div_(255)
    return faces[:, None].astype(np.float32) / np.float32(255)


@dataclass(frozen=True)
class ModelConfig:
    """What a model takes and where to look inside it (timm's `pretrained_cfg` idea), readable
    by name without building the network: `ferlab.models.model_config(name, **args)`. Callers
    read this instead of model names."""

    size: int = 48  # side of the square grayscale faces it takes
    crop: int = 0  # the centre crop of them it sees (0: the whole face); from input_crop
    accepts_crops: bool = True  # whether it can be trained on random crops smaller than `size`
    convolutional: bool = True  # whether it has conv layers (feature maps to explain)
    cam_layer: str | None = None  # the feature map Grad-CAM explains (None: no conv)
    filter_layer: str | None = None  # the layer whose filters a report shows by default
    mean: float = PIXEL_MEAN
    std: float = PIXEL_STD
    standalone: bool = True  # built from its name alone (an ensemble needs its members)


@dataclass(frozen=True)
class InputSpec:
    """What a model sees, in one place (timm's resolved data config): faces of `size` read as
    grayscale, prepared by `preprocess` (its card's), scaled to [0, 1], read through their
    centre crop `crop` (0: all of the face) and normalized by `mean`/`std` inside the network.
    `ModelCard.input_spec` builds it from the card and the registered ModelConfig; the
    Predictor prepares faces by it, and the network normalizes by the same config."""

    preprocess: Preprocess
    size: int = 48
    crop: int = 0
    mean: float = PIXEL_MEAN
    std: float = PIXEL_STD

    @classmethod
    def of(cls, config: ModelConfig, preprocess: Preprocess) -> "InputSpec":
        return cls(preprocess, config.size, config.crop, config.mean, config.std)
