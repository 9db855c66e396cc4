"""An ensemble as a model: the mean of its members' probabilities, one network to every caller.

Registered as `ensemble`, its arguments list the members (each a registered model and its
arguments, its own input crop among them), so a weights file of it is an ordinary ferlab
checkpoint: its card lists the members, `load_model` reads it, evaluation, TTA, explanation
and ONNX export (one graph) work on it as on any model. Its logits are the log of the mean
probability, so the softmax every caller takes gives the mean back.
"""

import math

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
        if not isinstance(members, list | tuple) or len(members) < 2:
            raise FerlabError("an ensemble needs a list of at least two members")
        shares = ensemble_weights(weights, len(members))
        nets = []
        for m in members:
            if not isinstance(m, dict) or not isinstance(m.get("model"), str):
                raise FerlabError(f"ensemble member {str(m)[:80]}: not a model name and arguments")
            if m["model"] == "ensemble":  # nesting could recurse without end (or in a cycle)
                raise FerlabError("an ensemble member cannot be an ensemble: list its members")
            args = dict(m.get("model_args", {})) | {"num_classes": num_classes}
            nets.append(create(m["model"], **args))
        self.members = nn.ModuleList(nets)
        self.register_buffer("weights", torch.tensor(shares), persistent=False)

    def weighted_parts(self) -> list[tuple[float, nn.Module]]:
        return [(float(w), net) for w, net in zip(self.weights, self.members, strict=True)]

    @property
    def seen_crop(self) -> int:
        """The members read their own centre crops: together, the largest of them (the whole
        face when one member reads all of it)."""
        crops = [getattr(net, "seen_crop", 0) for net in self.members]
        return 0 if self.input_crop == 0 and 0 in crops else max([self.input_crop, *crops])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(net(x).float(), 1) for net in self.members])
        mean = (probs * self.weights.view(-1, 1, 1)).sum(0)
        return mean.clamp_min(1e-12).log()


def ensemble_weights(weights, n: int) -> list[float]:
    """The members' shares (summing to 1) of one finite, non-negative number per member."""
    if weights is None:
        return [1.0 / n] * n
    ok = isinstance(weights, list | tuple) and len(weights) == n
    ok = ok and all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
    ok = ok and all(math.isfinite(w) and w >= 0 for w in weights)
    total = sum(weights) if ok else 0.0  # 1e308 + 1e308 is inf: refused below
    if not (ok and 0 < total < math.inf):
        shown = str(weights)[:80]
        raise FerlabError(
            f"ensemble weights {shown}: one finite, non-negative number per member ({n}), not all 0"
        )
    return [w / total for w in weights]


def ensemble_config(members=(), **_) -> ModelConfig:
    # Members keep their own crops inside; the ensemble takes whole faces. No single feature
    # map to explain with Grad-CAM: gradients go through every member.
    if not isinstance(members, list | tuple) or not all(
        isinstance(m, dict) and isinstance(m.get("model"), str) and m["model"] != "ensemble"
        for m in members
    ):
        raise FerlabError("ensemble members: a list of plain models (an ensemble holds none)")
    configs = [model_config(m["model"], **m.get("model_args", {})) for m in members]
    convolutional = any(c.convolutional for c in configs)
    return ModelConfig(accepts_crops=False, convolutional=convolutional, standalone=False)


register("ensemble", "the mean of its members' probabilities (members in its card)",
         ensemble_config)(Ensemble)  # fmt: skip
