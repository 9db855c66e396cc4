"""Exports of a trained model: the package's `default` weights file and ONNX.

Both carry the model card (architecture with its input crop, classes, preprocessing, recipe,
data fingerprint, metrics), so an exported file alone says what it expects and how it was made.
"""

import contextlib
import hashlib
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ferlab._version import __version__
from ferlab.atomic import write_bytes_atomic
from ferlab.data.faceset import FaceSet
from ferlab.errors import FerlabError
from ferlab.inference import Predictor, validation_split_of
from ferlab.models.card import ModelCard, checkpoint_bytes
from ferlab.runs import RunFolder
from ferlab.runtime import (  # noqa: F401 (ONNX_INPUT, onnx_card: the export's interface)
    EXPORT_EXTRA,
    ONNX_INPUT,
    ONNX_OUTPUT,
    onnx_card,
    onnx_graph,
    onnx_installed,
    session,
)


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
    card = replace(card, ferlab_version=__version__)  # the ferlab that shipped it
    return replace(card, metrics=metrics) if metrics is not None else card


def ensemble_of(members: list[Predictor], weights: list[float] | None = None):
    """(network, card) of the `ensemble` model averaging `members`' probabilities: they must
    share their classes, preprocessing and validation split (the split the ensemble is then
    evaluated and selected on); the card lists them, their weights and their hours."""
    from ferlab.models import create

    first = members[0]
    for m in members[1:]:
        if m.classes != first.classes or m.preprocess != first.preprocess:
            raise FerlabError(
                f"{m.path}: other classes or preprocessing than {first.path}; an ensemble's "
                "members answer the same question on the same faces"
            )
    splits = []
    for m in members:
        try:
            splits.append(validation_split_of(m))
        except FerlabError:
            splits.append(None)
    if any(s is None or set(s.ids) != set(splits[0].ids) for s in splits):
        raise FerlabError(
            "the members were not all selected on one saved validation split; an ensemble is "
            "chosen on the split its members share"
        )
    listed = [{"model": m.card.model, "model_args": dict(m.card.model_args)} for m in members]
    args = {"num_classes": len(first.classes), "members": listed}
    if weights is not None:
        args["weights"] = [float(w) for w in weights]
    net = create("ensemble", **args)
    for target, m in zip(net.members, members, strict=True):
        target.load_state_dict(m.model.state_dict())
    hours = [m.card.train_hours for m in members]
    card = replace(
        first.card,
        model="ensemble",
        model_args=args,
        split=asdict(splits[0]),
        recipe=None,
        epochs=None,
        train_hours=round(sum(hours), 2) if None not in hours else None,
        metrics=None,
        ferlab_version=__version__,
    )
    return net.eval(), card


def export_onnx(predictor: Predictor, out: Path) -> Path:
    """ONNX graph with a dynamic batch axis (the model's centre crop inside it); the model card
    goes in metadata_props, without the validation split's ids."""
    if not onnx_installed():
        raise FerlabError(f"ONNX export needs the export extra: {EXPORT_EXTRA}")
    graph = onnx_graph(predictor.model)
    _attach_card(graph, replace(predictor.card, split=None))
    write_bytes_atomic(Path(out), graph.SerializeToString())
    return Path(out)


def write_shipped_graph(predictor: Predictor, card: ModelCard, weights: Path) -> Path:
    """The ONNX graph that ships beside the weights file `weights` (NAME.onnx), so the core
    install runs the shipped models without torch: the same network and card (its split
    included), and the sha256 of the weights file it was made from (a graph whose weights
    were replaced without it is not used: runtime.shipped_graph)."""
    if not onnx_installed():
        raise FerlabError(f"ONNX export needs the export extra: {EXPORT_EXTRA}")
    graph = onnx_graph(predictor.model)
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    _attach_card(graph, card, weights_sha256=digest)
    out = Path(weights).with_suffix(".onnx")
    write_bytes_atomic(out, graph.SerializeToString())
    return out


def int8_graphs(predictor: Predictor, calibration: np.ndarray, folder: Path) -> dict[str, Path]:
    """The model's graph ("fp32") and its int8 candidates, written in `folder`: "every layer in
    int8", and for a network with convs "the first conv in fp32" (the conv on the face itself).
    Statically quantized by ONNX Runtime (QDQ, per-channel weights), activation ranges
    calibrated on `calibration`: the network's (N, 1, 48, 48) input batch of the faces
    (`Predictor.input_batch`)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, pre = Path(folder) / "fp32.onnx", Path(folder) / "pre.onnx"
    onnx.save(onnx_graph(predictor.model), str(fp32))
    quant_pre_process(str(fp32), str(pre))  # shape inference and folding, as ORT advises
    convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
    excluded = {"every layer in int8": []}
    if convs:  # a dense network (dnn-study) has none
        excluded["the first conv in fp32"] = convs[:1]
    graphs = {"fp32": fp32}
    for i, (name, exclude) in enumerate(excluded.items()):
        graphs[name] = Path(folder) / f"int8-{i}.onnx"
        quantize_static(
            str(pre),
            str(graphs[name]),
            FaceBatches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # 7-bit weights: without VNNI (AVX2 only, as here) u8 x s8 sums can saturate
            reduce_range=True,
            nodes_to_exclude=exclude,
        )
    return graphs


def export_onnx_int8(
    predictor: Predictor, out: Path, calibration: FaceSet, labels: np.ndarray | None = None
) -> Path:
    """The model in int8 (`int8_graphs`), calibrated on the faces of `calibration` (read raw
    or as the model sees them), e.g. its validation faces (never a test split), with their
    `labels` when known.

    Of the candidates, the one kept is the closer to fp32 on the calibration faces: in accuracy
    when `labels` are given, else in top-1 agreement; the card says which and why. Keeping the
    first conv in fp32 makes `fast` 10-33% faster but cost `default` accuracy
    (benchmarks/results/int8_first_conv.md)."""
    if not onnx_installed():
        raise FerlabError(f"ONNX export needs the export extra: {EXPORT_EXTRA}")
    if not len(calibration):
        raise FerlabError("int8 export: no calibration faces")
    import onnx

    x = predictor.input_batch(calibration).contiguous().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        graphs = int8_graphs(predictor, x, Path(tmp))
        answers = {k: _top1(p, x) for k, p in graphs.items()}
        fp32 = answers.pop("fp32")
        if labels is not None:
            score = {k: -abs(np.mean(a == labels) - np.mean(fp32 == labels))
                     for k, a in answers.items()}  # fmt: skip
            rule = "accuracy closest to fp32's on the calibration faces"
        else:
            score = {k: np.mean(a == fp32) for k, a in answers.items()}
            rule = "top-1 agreement with fp32 on the calibration faces"
        # A tie keeps the first conv in fp32: faster for `fast`, no slower for `default`.
        chosen = max(reversed(score), key=score.get)
        graph = onnx.load(str(graphs[chosen]))
    del graph.metadata_props[:]
    how = {
        "int8": f"static, QDQ, per-channel weights, {chosen}",
        "chosen_by": rule,
        "calibration_faces": len(calibration),
        "agreement_with_fp32": round(float(np.mean(answers[chosen] == fp32)), 4),
    }
    _attach_card(graph, replace(predictor.card, split=None), quantization=json.dumps(how))
    write_bytes_atomic(Path(out), graph.SerializeToString())
    return Path(out)


def _top1(graph: Path, x: np.ndarray) -> np.ndarray:
    return session(graph).run([ONNX_OUTPUT], {ONNX_INPUT: x})[0].argmax(1)


class FaceBatches:
    """ONNX Runtime's calibration reader protocol (get_next: an input feed, None at the end)."""

    def __init__(self, x: np.ndarray, batch: int = 64):
        self.batches = ({ONNX_INPUT: x[i : i + batch]} for i in range(0, len(x), batch))

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def _attach_card(graph, card: ModelCard, **extra: str) -> None:
    entry = graph.metadata_props.add()
    entry.key, entry.value = "ferlab", json.dumps(card.to_dict())
    for key, value in extra.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = f"ferlab.{key}", value
