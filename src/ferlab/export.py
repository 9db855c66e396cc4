"""Exports of a trained model: the package's `default` weights file and ONNX.

Both carry the model card (architecture with its input crop, classes, preprocessing, recipe,
data fingerprint, metrics), so an exported file alone says what it expects and how it was made.
"""

import contextlib
import io
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ferlab.atomic import write_bytes_atomic
from ferlab.errors import FerlabError
from ferlab.inference import Predictor, validation_split_of
from ferlab.models.card import ModelCard, checkpoint_bytes
from ferlab.runs import RunFolder

ONNX_INPUT = "faces"  # (batch, 1, 48, 48) float32 in [0, 1], preprocessed as the card says
ONNX_OUTPUT = "logits"


def export_weights(model: torch.nn.Module, card: ModelCard, out: Path) -> Path:
    """What `default` ships: fp32 weights and the card (give it the split and the metrics)."""
    write_bytes_atomic(Path(out), checkpoint_bytes(model, card))
    return Path(out)


def shipping_card(predictor: Predictor, metrics: dict | None = None) -> ModelCard:
    """The card a weights file ships with: the run's validation split (so `evaluate --split
    val` works on the file alone), its training hours, and the measured metrics given."""
    card = predictor.card
    with contextlib.suppress(FerlabError):  # a bare checkpoint ships without its split
        card = replace(card, split=asdict(validation_split_of(predictor)))
    run = RunFolder.of_checkpoint(predictor.path) if predictor.path else None
    if run is not None and card.epochs:
        # The hours that made these weights: the epochs up to the one they were saved at.
        seconds = [s for s in run.read_history()["epoch_seconds"][: card.epochs] if s == s]
        card = replace(card, train_hours=round(sum(seconds) / 3600, 2) if seconds else None)
    return replace(card, metrics=metrics) if metrics is not None else card


def export_onnx(predictor: Predictor, out: Path) -> Path:
    """ONNX graph with a dynamic batch axis (the model's centre crop inside it); the model card
    goes in metadata_props, without the validation split's ids."""
    try:
        import onnx
    except ImportError:
        raise FerlabError(
            "ONNX export needs the export extra: pip install 'ferlab[export]'"
        ) from None
    model = predictor.model.eval().to(memory_format=torch.contiguous_format)
    example = torch.rand(2, 1, 48, 48)
    tmp = Path(out).with_name(Path(out).name + ".export")
    # The exporter narrates every step on stdout and logs notices (e.g. about torchvision) as
    # warnings; keep the CLI's output to its result.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=True,
                input_names=[ONNX_INPUT],
                output_names=[ONNX_OUTPUT],
                dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            )
        graph = onnx.load(str(tmp))
    finally:
        quiet.setLevel(level)
        for leftover in (tmp, tmp.with_name(tmp.name + ".data")):
            leftover.unlink(missing_ok=True)
    card = replace(predictor.card, split=None)
    entry = graph.metadata_props.add()
    entry.key, entry.value = "ferlab", json.dumps(card.to_dict())
    write_bytes_atomic(Path(out), graph.SerializeToString())
    return Path(out)


def onnx_card(path: Path) -> ModelCard:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return ModelCard.from_dict(json.loads(props.get("ferlab", "null")), str(path))
