"""The study's plain deep network: a parameter budget like the CNN's, no convolutions."""

from collections import OrderedDict

from torch import nn

from ferlab.models.base import FERModel, ModelConfig
from ferlab.models.registry import register


class DNNStudy(FERModel):
    """2304 pixels -> depth x [Dense width, BatchNorm, LeakyReLU, Dropout] -> classes."""

    def __init__(
        self,
        num_classes: int = 7,
        depth: int = 51,
        width: int = 900,
        dropout: float = 0.2,
        slope: float = 0.1,
        in_pixels: int = 48 * 48,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
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


# Its first layer takes exactly 48x48 pixels: no crops, no feature maps.
DENSE = ModelConfig(accepts_crops=False, convolutional=False)


register("dnn-study", "the study's DNN: 51 x Dense 900 + BN + LeakyReLU + Dropout (42.8M)",
         DENSE)(DNNStudy)  # fmt: skip
# About dnn-study's parameter count in 3 wide layers instead of 51 narrow ones: what a dense
# network of that size learns when depth is not in its way.
register("dense-control", "3 x Dense 4096 + BN + LeakyReLU + Dropout: dnn-study's size (43.0M)",
         DENSE, depth=3, width=4096)(DNNStudy)  # fmt: skip
