"""Compact residual CNNs sized for training on a 2-core CPU."""

from collections import OrderedDict

from torch import nn

from ferlab.models.base import ModelConfig, PooledCNN
from ferlab.models.registry import register


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(y + self.shortcut(x))


WIDTHS, DEPTHS = (64, 128, 256), (1, 2, 2)


class ResNetFER(PooledCNN):
    """Stem conv at 48x48, then stages of basic blocks, each stage halving the resolution."""

    def __init__(
        self,
        num_classes: int = 7,
        stem: int = 32,
        widths=WIDTHS,
        depths=DEPTHS,
        dropout: float = 0.3,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(1, stem, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(stem),
                act=nn.ReLU(inplace=True),
            )
        )
        stages, c_in = [], stem
        for i, (w, d) in enumerate(zip(widths, depths, strict=True), 1):
            blocks = [BasicBlock(c_in, w, 2)] + [BasicBlock(w, w) for _ in range(d - 1)]
            stages.append((f"stage{i}", nn.Sequential(*blocks)))
            c_in = w
        self.stages = nn.Sequential(OrderedDict(stages))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward_features(self, x):
        return self.stages(self.stem(self.normalize(x))).mean((2, 3))  # (B, C)


def resnet_config(widths=WIDTHS, depths=DEPTHS, **_) -> ModelConfig:
    # Grad-CAM on the last block's output (after the residual sum), never a conv inside its
    # branch; filters of the middle stage's first block.
    last, middle = f"stages.stage{len(widths)}", f"stages.stage{(len(widths) + 1) // 2}"
    return ModelConfig(cam_layer=f"{last}.{depths[-1] - 1}", filter_layer=f"{middle}.0.act2")


register(
    "resnet-fer", "compact ResNet: stem 32, stages 64-128-256 of 1-2-2 blocks (2.7M)", resnet_config
)(ResNetFER)
