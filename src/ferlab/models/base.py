"""The interface every ferlab model shares, so evaluation and explanation need no per-model code.

A model maps (B, 1, 48, 48) float faces in [0, 1] to (B, classes) logits, in two steps:
`forward_features` (everything up to the classifier) and `forward_head`.
"""

from dataclasses import replace

import torch
from torch import nn

from ferlab.models.spec import (  # noqa: F401 (the models' shared interface)
    PIXEL_MEAN,
    PIXEL_STD,
    InputSpec,
    ModelConfig,
    face_batch,
)


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
