"""The study's plain deep network: a parameter budget like the CNN's, no convolutions."""

from collections import OrderedDict

from torch import nn

from ferlab.models.base import FERModel
from ferlab.models.registry import register


class DNNSeed(FERModel):
    """2304 pixels -> depth x [Dense width, BatchNorm, LeakyReLU, Dropout] -> classes."""

    accepts_crops = False  # its first layer takes exactly 48x48 pixels

    def __init__(
        self,
        num_classes: int = 7,
        depth: int = 51,
        width: int = 900,
        dropout: float = 0.2,
        slope: float = 0.1,
        in_pixels: int = 48 * 48,
    ):
        super().__init__()
        layers, w_in = [], in_pixels
        for i in range(1, depth + 1):
            layers += [
                (f"dense{i}", nn.Linear(w_in, width)),
                (f"bn{i}", nn.BatchNorm1d(width)),
                (f"act{i}", nn.LeakyReLU(slope, inplace=True)),
                (f"drop{i}", nn.Dropout(dropout)),
            ]
            w_in = width
        self.body = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x):
        return self.body(self.normalize(x).flatten(1))  # (B, width)

    def forward_head(self, features):
        return self.classifier(features)


@register("dnn-seed", "the study's DNN: 51 x Dense 900 + BN + LeakyReLU + Dropout (42.8M)")
def dnn_seed(num_classes: int = 7, **kw) -> DNNSeed:
    return DNNSeed(num_classes, **kw)
