"""Compact CNNs for the fast tier: cheap per face on a CPU, trained by distillation.

On this CPU ONNX Runtime's time per multiply-accumulate is worst in full-resolution layers with
few channels (memory-bound): cnn-small's two 16-channel convs at 44x44 take a quarter of its
time for a fifth of its work. A 3x3 stride-2 stem halves the face before anything wide runs.
"""

from collections import OrderedDict

from torch import nn

from ferlab.models.base import ModelConfig, PooledCNN
from ferlab.models.registry import register


def conv_bn_act(c_in: int, c_out: int, stride: int = 1, separable: bool = False) -> list:
    """(name, module) pairs of a 3x3 conv (or depthwise 3x3 + pointwise 1x1) + BN + ReLU."""
    if not separable:
        return [
            ("conv", nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)),
            ("bn", nn.BatchNorm2d(c_out)),
            ("act", nn.ReLU(inplace=True)),
        ]
    return [
        ("dw", nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False)),
        ("dw_bn", nn.BatchNorm2d(c_in)),
        ("dw_act", nn.ReLU(inplace=True)),
        ("conv", nn.Conv2d(c_in, c_out, 1, bias=False)),
        ("bn", nn.BatchNorm2d(c_out)),
        ("act", nn.ReLU(inplace=True)),
    ]


STAGES = ((32,), (64,), (128,), (256,))


class CompactCNN(PooledCNN):
    """stem (3x3, stride 2) -> stages of 3x3 convs, a 2x2 max-pool before each stage after the
    first -> global average pooling -> dropout -> classes. `stages` lists each stage's conv
    widths; a stage without convs is just its pool (a second halving)."""

    def __init__(
        self,
        num_classes: int = 7,
        stem: int = 32,
        stages=STAGES,
        separable: bool = False,
        dropout: float = 0.1,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
        blocks = [("stem", nn.Sequential(OrderedDict(conv_bn_act(1, stem, stride=2))))]
        c_in = stem
        for s, widths in enumerate(stages, 1):
            layers = [("pool", nn.MaxPool2d(2))] if s > 1 else []
            for j, width in enumerate(widths, 1):
                block = conv_bn_act(c_in, width, separable=separable)
                layers.append((f"conv{j}", nn.Sequential(OrderedDict(block))))
                c_in = width
            if layers:
                blocks.append((f"stage{s}", nn.Sequential(OrderedDict(layers))))
        self.features = nn.Sequential(OrderedDict(blocks))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_in, num_classes)


def compact_config(stages=STAGES, **_) -> ModelConfig:
    # Grad-CAM on the last conv's activation; filters of the stem: the only full 3x3 filters
    # a face meets whole.
    last = [f"stage{s}.conv{len(w)}.act" for s, w in enumerate(stages, 1) if w]
    return ModelConfig(
        cam_layer=f"features.{(last or ['stem.act'])[-1]}", filter_layer="features.stem.act"
    )


# Twice cnn-small's faces/s through ONNX Runtime, but 4 points below it in equal short
# distillations (results/fast/compare_students.md), so `fast` stays on cnn-small.
register("cnn-fast", "compact CNN: stride-2 stem 32, one 3x3 conv per stage 32-64-128-256, GAP "
         "(0.40M)", compact_config)(CompactCNN)  # fmt: skip
