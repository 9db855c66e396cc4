"""The study's VGG-style CNN and the plain compact CNN used as a CPU baseline."""

from collections import OrderedDict

import torch
from torch import nn

from ferlab.models.base import FERModel, ModelConfig, PooledCNN
from ferlab.models.registry import register

# VGG16's conv stack ('M' = 2x2 max-pool): with the seed's FC head this lands 0.34% under the
# study's Keras total (see README, models).
BASELINE_WIDTHS = (32, 64, 128, 256)
SMALL_WIDTHS = (16, 32, 64, 128)
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def conv_stack(config, act: type[nn.Module], slope: float | None = None) -> nn.Sequential:
    """Named blocks block{i}: conv{j} (3x3 + BatchNorm + activation) ..., pool."""
    blocks, layers, c_in, b, j = [], [], 1, 1, 1
    for item in config:
        if item == "M":
            layers.append(("pool", nn.MaxPool2d(2)))
            blocks.append((f"block{b}", nn.Sequential(OrderedDict(layers))))
            layers, b, j = [], b + 1, 1
            continue
        a = act(slope, inplace=True) if slope is not None else act(inplace=True)
        layers += [
            (f"conv{j}", nn.Conv2d(c_in, item, 3, padding=1, bias=False)),
            (f"bn{j}", nn.BatchNorm2d(item)),
            (f"act{j}", a),
        ]
        c_in, j = item, j + 1
    if layers:  # a last stage without a pool
        blocks.append((f"block{b}", nn.Sequential(OrderedDict(layers))))
    return nn.Sequential(OrderedDict(blocks))


class VGGStudy(FERModel):
    """Conv blocks (BN + LeakyReLU + max-pool), then Dense 4096-4096-2048-1024 with BN,
    LeakyReLU and Dropout, then the classes."""

    def __init__(
        self,
        num_classes: int = 7,
        dropout: float = 0.5,
        slope: float = 0.1,
        conv_bias: bool = True,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
        self.features = conv_stack(VGG16, nn.LeakyReLU, slope)
        if conv_bias:  # Keras convs carry a bias even before BatchNorm; the study counts them
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):
                    m.bias = nn.Parameter(torch.zeros(m.out_channels))
        widths = (512, 4096, 4096, 2048, 1024)  # 48 -> 1 after five pools: 512 x 1 x 1
        fc = []
        for i, (w_in, w_out) in enumerate(zip(widths, widths[1:], strict=False), 1):
            fc += [
                (f"fc{i}", nn.Linear(w_in, w_out)),
                (f"fc{i}_bn", nn.BatchNorm1d(w_out)),
                (f"fc{i}_act", nn.LeakyReLU(slope, inplace=True)),
                (f"fc{i}_drop", nn.Dropout(dropout)),
            ]
        self.fc = nn.Sequential(OrderedDict(fc))
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x):
        return self.features(self.normalize(x)).flatten(1)  # (B, 512)

    def forward_head(self, features):
        return self.classifier(self.fc(features))


class PlainCNN(PooledCNN):
    """Stages of two 3x3 conv + BN + ReLU, max-pool between, global average pooling."""

    def __init__(
        self,
        num_classes: int = 7,
        widths=BASELINE_WIDTHS,
        dropout: float = 0.3,
        stage_dropout: float = 0.0,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
        config = []
        for w in widths:
            config += [w, w, "M"]
        self.features = conv_stack(config[:-1], nn.ReLU)  # no pool after the last stage
        if stage_dropout:  # after each pooled stage: regularizes a long schedule
            for block in list(self.features)[:-1]:
                block.add_module("drop", nn.Dropout(stage_dropout))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)


# The study's: 3x3 maps before the last pool; its second conv, 64 filters.
VGG_STUDY = ModelConfig(cam_layer="features.block5.act3", filter_layer="features.block1.conv2")


def plain_cnn_config(widths=BASELINE_WIDTHS, **_) -> ModelConfig:
    # Filters at mid-depth: parts of faces (eyes, mouth corners) at 24x24, not edges nor whole
    # faces; Grad-CAM on the last stage's maps.
    return ModelConfig(
        cam_layer=f"features.block{len(widths)}.act2",
        filter_layer=f"features.block{max(1, len(widths) // 2)}.act2",
    )


register(
    "vgg-study", "the study's CNN: VGG16-BN conv stack, FC 4096-4096-2048-1024 (44.2M)", VGG_STUDY
)(VGGStudy)
register("cnn-baseline", "plain CNN, 4 stages of 2 conv, widths 32-64-128-256, GAP (1.2M)",
         plain_cnn_config)(PlainCNN)  # fmt: skip
# The plain CNN at a quarter of the work.
register("cnn-small", "plain CNN, widths 16-32-64-128, GAP (0.29M)", plain_cnn_config,
         widths=SMALL_WIDTHS)(PlainCNN)  # fmt: skip
