"""An ensemble as a model: the mean of its members' probabilities, one network to every caller.

Registered as `ensemble`, its arguments list the members (each a registered model and its
arguments, its own input crop among them), so a weights file of it is an ordinary ferlab
checkpoint: its card lists the members, `load_model` reads it, evaluation, TTA, explanation
and ONNX export (one graph) work on it as on any model. Its logits are the log of the mean
probability, so the softmax every caller takes gives the mean back.
"""

import torch
from torch import nn

from ferlab.errors import FerlabError
from ferlab.models.base import FERModel, ModelConfig
from ferlab.models.registry import create, model_config, register


class Ensemble(FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        members: list | tuple = (),
        weights: list | tuple | None = None,
        input_crop: int = 0,
    ):
        super().__init__(input_crop)
        if len(members) < 2:
            raise FerlabError("an ensemble needs at least two members")
        nets = []
        for m in members:
            if not isinstance(m, dict) or not isinstance(m.get("model"), str):
                raise FerlabError(f"ensemble member {m!r}: not a model name and its arguments")
            args = dict(m.get("model_args", {})) | {"num_classes": num_classes}
            nets.append(create(m["model"], **args))
        self.members = nn.ModuleList(nets)
        w = torch.ones(len(nets)) if weights is None else torch.tensor(weights, dtype=torch.float)
        if w.shape != (len(nets),) or (w < 0).any() or w.sum() <= 0:
            raise FerlabError(f"ensemble weights {weights}: one non-negative weight per member")
        self.register_buffer("weights", w / w.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(net(x).float(), 1) for net in self.members])
        mean = (probs * self.weights.view(-1, 1, 1)).sum(0)
        return mean.clamp_min(1e-12).log()


def ensemble_config(members=(), **_) -> ModelConfig:
    # Members keep their own crops inside; the ensemble takes whole faces. No single feature
    # map to explain with Grad-CAM: gradients go through every member.
    configs = [model_config(m["model"], **m.get("model_args", {})) for m in members]
    convolutional = any(c.convolutional for c in configs)
    return ModelConfig(accepts_crops=False, convolutional=convolutional, standalone=False)


register("ensemble", "the mean of its members' probabilities (members in its card)",
         ensemble_config)(Ensemble)  # fmt: skip
