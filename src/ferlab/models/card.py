"""The model card: what a trained model is and how it was made, stored with its weights.

Training writes it into every checkpoint, export into the shipped weights and the ONNX file;
`card.build()` (= `create(card.model, **card.model_args)`) rebuilds exactly the trained
network, input crop included, and `read_checkpoint` checks the card before trusting it.
"""

import io
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ferlab.data.labels import canonical_emotion
from ferlab.data.preprocess import Preprocess
from ferlab.errors import FerlabError
from ferlab.models.registry import canonical, create, model_config
from ferlab.models.spec import InputSpec, ModelConfig

if TYPE_CHECKING:  # torch is imported where weights are read or written: not for a card
    from torch import nn


@dataclass(frozen=True)
class ModelCard:
    model: str
    model_args: dict  # constructor arguments: num_classes, input_crop, widths, ...
    classes: tuple[str, ...]
    preprocess: Preprocess = field(default_factory=Preprocess)
    data_fingerprint: str | None = None  # of the faces it was trained on (order-free)
    data: str | None = None  # where they were read from, as given
    split: dict | None = None  # the validation split itself (shipped weights carry it)
    split_file: str | None = None  # a run's checkpoint: the split saved beside it
    recipe: str | None = None  # "name@version" of the packaged recipe
    epochs: int | None = None  # epochs trained when these weights were saved
    train_hours: float | None = None
    metrics: dict | None = None  # measured figures stored at export
    ferlab_version: str = ""  # the ferlab that wrote the card (trained, or shipped, the weights)
    label_mode: str | None = None  # FER+ runs: how the votes became targets (TrainConfig)

    def build(self) -> "nn.Module":
        return create(self.model, **self.model_args)

    @property
    def input_crop(self) -> int:
        return self.input_spec.crop

    @property
    def input_spec(self) -> InputSpec:
        """What the model sees: this card's preprocessing and its registered config; in the
        core install (no torch, so no networks to look up) the config the card itself gives,
        its crop (every registered network takes 48x48 faces normalized alike)."""
        try:
            config = model_config(self.model, **self.model_args)
        except ModuleNotFoundError:
            config = ModelConfig(crop=int(self.model_args.get("input_crop", 0) or 0))
        return InputSpec.of(config, self.preprocess)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["preprocess"] = self.preprocess.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "model card") -> "ModelCard":
        """A validated card; metadata written by earlier ferlab versions is translated."""
        if not isinstance(d, dict):
            raise FerlabError(f"{source}: damaged model card (not a mapping)")
        if not _plain_tree(d):
            raise FerlabError(f"{source}: damaged model card (nested too deep, or in a cycle)")
        d = _translate_legacy(dict(d))
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise FerlabError(
                f"{source}: model card has unknown fields {', '.join(sorted(unknown))} "
                "(written by a newer ferlab?)"
            )
        try:
            card = cls(**d)
            card = replace(
                card,
                classes=tuple(canonical_emotion(str(c)) for c in card.classes),
                preprocess=Preprocess.from_dict(card.preprocess),
                model_args=dict(card.model_args),
            )
        except (TypeError, ValueError, AttributeError) as e:
            raise FerlabError(f"{source}: damaged model card ({type(e).__name__}: {e})") from None
        if not isinstance(card.model, str) or not card.classes:
            raise FerlabError(f"{source}: damaged model card (no model name or no classes)")
        if card.model_args.get("num_classes", len(card.classes)) != len(card.classes):
            raise FerlabError(
                f"{source}: damaged model card ({len(card.classes)} classes named, "
                f"num_classes {card.model_args['num_classes']})"
            )
        return card


def _plain_tree(value, max_depth: int = 16) -> bool:
    """Whether a card's values nest at most `max_depth` deep and hold no cycle (a real card
    nests 4 deep); walked without recursion, so a hostile card cannot exhaust the stack."""
    stack, containers = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        containers += 1
        if depth >= max_depth or containers > 1_000_000:  # a cycle never ends: depth stops it
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _translate_legacy(d: dict) -> dict:
    """Metadata written before the card format settled (ferlab 0.1 development versions):
    input_crop beside the model arguments, the 0-based index of the
    last epoch, the split as validation_split or (oldest) bare validation_ids, old model
    names."""
    crop = int(d.pop("input_crop", 0) or 0)
    if crop:
        d["model_args"] = {**d.get("model_args", {}), "input_crop": crop}
    if "epoch" in d:
        d["epochs"] = int(d.pop("epoch")) + 1
    if "validation_split" in d:
        d["split"] = d.pop("validation_split")
    if "validation_ids" in d:
        d["split"] = {"ids": list(d.pop("validation_ids")), "fraction": 0.0, "seed": 0}
    if isinstance(d.get("model"), str):
        d["model"] = canonical(d["model"])
    if isinstance(d.get("preprocess"), dict):
        d["preprocess"] = dict(d["preprocess"])
    return d


def load_checkpoint_safely(path: Path, map_location="cpu") -> dict:
    """The contents of a checkpoint file, read without running code from it (tensors and plain
    values only); a damaged or foreign file is a FerlabError of one line."""
    try:
        import torch

        with warnings.catch_warnings():  # torch warns of a legacy pickle before failing on it
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        first = (str(e).strip().splitlines() or [""])[0]
        raise FerlabError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {first})"
        ) from None
    if not isinstance(ckpt, dict):
        raise FerlabError(f"{path}: not a ferlab checkpoint (no 'ferlab' metadata)")
    return ckpt


def read_checkpoint(
    path: Path, device: str = "cpu", weights: str = "final"
) -> tuple["nn.Module", ModelCard]:
    """The model and card of a checkpoint or shipped weights file. A run trained with an EMA
    checkpoints the averaged weights as its state (weights="final") and keeps the raw ones
    beside (weights="raw")."""
    import torch

    ckpt = load_checkpoint_safely(path, device)
    meta = ckpt.get("ferlab") if isinstance(ckpt, dict) else None
    if not meta or not isinstance(meta, dict):
        raise FerlabError(f"{path}: not a ferlab checkpoint (no 'ferlab' metadata)")
    if "epochs" not in meta and "input_crop" not in meta:
        # Runs from before ferlab recorded the crop at all: their config knows it.
        config = ckpt.get("hyper_parameters", {}).get("config", {})
        crop = int(config.get("crop") or 0)
        meta = meta | {"input_crop": crop if crop < 48 else 0}
    card = ModelCard.from_dict(meta, str(path))
    state = ckpt.get("state_dict")
    if weights == "raw":
        state = ckpt.get("current_model_state", state)  # WeightAveraging's raw weights
    if not isinstance(state, dict):
        raise FerlabError(f"{path}: damaged checkpoint (no state_dict)")
    # Lightning prefixes the wrapped model's weights with "model."
    state = {
        k.removeprefix("model."): v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if isinstance(k, str) and k.startswith("model.") and isinstance(v, torch.Tensor)
    }
    check_architecture(card, state, path)  # before anything is allocated
    model = card.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise FerlabError(f"{path}: weights do not fit model {card.model} ({e})") from None
    return model.eval().to(device), card


def check_architecture(card: ModelCard, state: dict, path: Path | str) -> None:
    """The network the card describes has exactly the weights the file carries (names and
    shapes), checked on a skeleton without storage: a small file naming a huge network, or an
    ensemble of more members than it holds weights for, is refused before memory is taken."""
    if card.model == "ensemble":
        members = card.model_args.get("members")
        if not isinstance(members, list | tuple) or not all(isinstance(m, dict) for m in members):
            raise FerlabError(f"{path}: damaged ensemble card (members is not a list of models)")
        held = {k.split(".")[1] for k in state if k.startswith("members.") and k.count(".") > 1}
        if len(members) != len(held):
            raise FerlabError(
                f"{path}: the card lists {len(members)} ensemble members, the file holds "
                f"weights for {len(held)}"
            )
        parts = [(f"members.{i}.", m) for i, m in enumerate(members)]
    else:
        parts = [("", {"model": card.model, "model_args": card.model_args})]
    expected = {}
    for prefix, m in parts:
        if not isinstance(m.get("model"), str) or m["model"] == "ensemble":
            raise FerlabError(f"{path}: damaged ensemble card (a member is not a plain model)")
        args = m.get("model_args", {})
        if not isinstance(args, dict):
            raise FerlabError(f"{path}: damaged model card (model arguments are not a mapping)")
        if prefix:
            args = args | {"num_classes": len(card.classes)}
        try:
            import torch

            with torch.device("meta"):
                skeleton = create(m["model"], **args)
        except FerlabError:
            raise
        except (TypeError, ValueError, RuntimeError, OverflowError) as e:
            raise FerlabError(
                f"{path}: the card's model {m['model']} cannot be built ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''})"
            ) from None
        expected |= {prefix + k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        wrong = sorted(set(expected) ^ set(got)) or sorted(
            k for k in expected if expected[k] != got[k]
        )
        k = wrong[0]
        raise FerlabError(
            f"{path}: the card describes a network that does not fit its weights ({k}: "
            f"{expected.get(k, 'not in the network')} in the card's network, "
            f"{got.get(k, 'missing')} in the file)"
        )


def checkpoint_bytes(model: "nn.Module", card: ModelCard) -> bytes:
    """A minimal ferlab checkpoint: fp32 weights and the card, no optimizer state."""
    import torch

    state = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": state, "ferlab": card.to_dict()}, buf)
    return buf.getvalue()
