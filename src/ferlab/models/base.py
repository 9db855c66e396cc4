"""The interface every ferlab model shares, so evaluation and explanation need no per-model code.

A model maps (B, 1, 48, 48) float faces in [0, 1] to (B, classes) logits, in two steps:
`forward_features` (everything up to the classifier) and `forward_head`.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ferlab.data.preprocess import Preprocess

# Equalized faces are spread over 0..1 with mean ~0.5 and std ~0.29; centring in the model
# keeps callers (saliency, prediction) working on plain [0, 1] pixels.
PIXEL_MEAN, PIXEL_STD = 0.5, 0.29


def face_batch(faces):
    """(B, 48, 48) uint8 faces, prepared as the model card says -> the batch every model takes,
    (B, 1, 48, 48) float32 in [0, 1]: the one step from faces to a model's input, for training
    (torch tensors in and out), prediction and export (numpy)."""
    if isinstance(faces, torch.Tensor):
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


class FERModel(nn.Module):
    """input_crop: a model trained on random crops (TrainConfig.crop) sees larger faces through
    their centre crop: given whole 48x48 faces it scored 1.3 points lower on validation."""

    model_name: str = ""
    model_args: dict
    config: ModelConfig = ModelConfig()  # set by create() from the registry

    def __init__(self, input_crop: int = 0):
        super().__init__()
        # The crop lives in the config alone; create() replaces it with the registry's, which
        # holds the same crop, checked there.
        self.config = replace(type(self).config, crop=int(input_crop or 0))

    @property
    def input_crop(self) -> int:
        """The centre crop of a whole face this network reads (0: all of it)."""
        return self.config.crop

    @property
    def accepts_crops(self) -> bool:
        return self.config.accepts_crops

    @property
    def cam_layer(self) -> str | None:
        return self.config.cam_layer

    def weighted_parts(self) -> list[tuple[float, nn.Module]] | None:
        """The networks whose probabilities this model averages, with their shares, each to
        be shown its own test-time views (None: it is one network)."""
        return None

    @property
    def seen_crop(self) -> int:
        """The centre crop of a whole face this model reads (0: all of it)."""
        return self.input_crop

    @property
    def filter_layer(self) -> str | None:
        return self.config.filter_layer

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        c, config = self.input_crop, self.config
        if c and x.shape[-1] > c and x.shape[-2] > c:
            top, left = (x.shape[-2] - c) // 2, (x.shape[-1] - c) // 2
            x = x[..., top : top + c, left : left + c]
        return (x - config.mean) / config.std

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class PooledCNN(FERModel):
    """A conv trunk -> global average pooling -> dropout -> linear classifier, the head the
    plain, compact and residual CNNs share; subclasses set `features`, `dropout`, `classifier`."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalize(x)).mean((2, 3))  # (B, C)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """The model's conv layers by module name, in forward order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def explainable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Layers whose outputs are feature maps: convs and the activations that follow them."""
    out, seen_conv = {}, False
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            seen_conv = True
        if seen_conv and isinstance(m, nn.Conv2d | nn.LeakyReLU | nn.ReLU | nn.MaxPool2d):
            out[name] = m
    return out


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Linear and Conv2d layers, in forward order, by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)}


def cam_layer(model: nn.Module) -> nn.Module | None:
    """The layer Grad-CAM explains, as the model names it (None for a model without one)."""
    name = getattr(model, "cam_layer", None)
    return dict(model.named_modules())[name] if name else None
