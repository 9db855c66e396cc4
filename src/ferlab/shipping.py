"""`ship()`: the one way a trained model enters the package's weights folder; and the files
made from trained models beside it: `export_files` (ONNX, int8 ONNX, a weights file) and
`write_ensemble` (one model averaging others).

It measures the run's selected checkpoint where it was selected (validation) and once on
PublicTest, plain and with TTA, records the figures beside the run's training record, and
writes it into the package. A shipped model of the same name is scored on the same faces
(its own validation split); the candidate must answer the same classes, prepare faces the same
way and be selected on that split, and it replaces a model that scores higher (plain or TTA)
only when forced."""

import json
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ferlab.atomic import (
    PACKAGE_WEIGHTS_DIR,
    new_output_file,
    refuse_special_file,
    shipping,
    write_text_atomic,
)
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate, select_split
from ferlab.evaluation.weights import WeightChoice, validation_choice
from ferlab.export import (
    ensemble_of,
    export_onnx,
    export_onnx_int8,
    export_weights,
    shipping_card,
    write_shipped_graph,
)
from ferlab.inference import (
    PACKAGE_MODELS,
    Predictor,
    load_model,
    resolve_checkpoint,
    validation_split_of,
)
from ferlab.runs import RunFolder
from ferlab.training import TrainConfig


@dataclass
class Shipped:
    weights: Path
    metrics: dict
    replaced: dict | None  # the metrics of the model it replaced, if one was shipped
    # the shipped model's figures on the faces the candidate was measured on (None: none shipped)
    shipped_figures: dict | None = None


def measured_metrics(predictor: Predictor, run: RunFolder, data: str | Path) -> dict:
    """The figures a shipped card carries: validation and PublicTest, plain and TTA."""
    ev = {}
    for split in ("val", "PublicTest"):
        faces = select_split(predictor, data, split)
        for tta in (False, True):
            ev[split, tta] = evaluate(predictor, faces, tta=tta, split=split).report
    train = run.read_summary()
    seconds = [s for s in run.read_history()["epoch_seconds"] if s == s]
    config = TrainConfig.from_yaml(run.config)

    def figures(split: str) -> dict:
        plain, tta = ev[split, False], ev[split, True]
        return {
            "n": plain["n"],
            "accuracy": plain["accuracy"],
            "accuracy_tta": tta["accuracy"],
            "macro_f1": plain["macro_f1"],
            "majority_accuracy": plain["majority_accuracy"],
        }

    metrics = {
        "recipe": config.recipe,
        "model": train.get("model", predictor.card.model),
        "params": sum(p.numel() for p in predictor.model.parameters()),
        "epochs": train.get("epochs_completed"),
        "best_epoch": predictor.card.epochs,
        "training_minutes": round(sum(seconds) / 60, 1),
        "stopped_by": train.get("stopped_by"),
        "weights": f"EMA (decay {config.ema_decay})" if config.ema_decay else "raw",
        "val": figures("val"),
        "PublicTest": figures("PublicTest"),
        "tta": ev["val", True]["tta"],
    }
    if config.teacher:
        metrics["teacher"] = config.teacher
    return metrics


def ship(
    run_path: Path,
    name: str,
    data: str | Path,
    record: Path | None = None,
    force: bool = False,
    weights_dir: Path = PACKAGE_WEIGHTS_DIR,
) -> Shipped:
    """Ship the run at `run_path` as package model `name`; its record goes to `record`
    (metrics.json). A shipped model that scores higher on the same faces stays unless `force`;
    one with other classes or preprocessing is never replaced."""
    if name not in PACKAGE_MODELS:
        raise FerlabError(
            f"unknown package model '{name}'; choose one of {', '.join(PACKAGE_MODELS)}"
        )
    run_path = Path(run_path)
    if record is not None and Path(record).resolve() == run_path.resolve():
        raise FerlabError(
            f"{record}: is the run itself (its metrics.json is its training record); choose "
            "another --record"
        )
    if not RunFolder(run_path).config.is_file():
        raise FerlabError(f"{run_path}: not a ferlab run folder (no config.yaml)")
    target = Path(weights_dir) / f"{name}.pt"
    shipped = load_model(target, runtime="torch") if target.is_file() else None
    predictor = load_model(run_path, runtime="torch")
    if shipped is not None:
        refuse_another_kind(predictor, shipped, name)
    metrics = measured_metrics(predictor, RunFolder(run_path), data)
    figures = None if shipped is None else shipped_figures(predictor, shipped, data, name, force)
    if figures is not None:
        ours, theirs = metrics["val"], figures["val"]
        worse = [k for k in ("accuracy", "accuracy_tta") if theirs[k] > ours[k]]
        if worse and not force:
            raise FerlabError(
                f"the shipped {name} scores {theirs['accuracy']:.2%} "
                f"({theirs['accuracy_tta']:.2%} TTA) on its validation split, this run "
                f"{ours['accuracy']:.2%} ({ours['accuracy_tta']:.2%} TTA) on the same faces; "
                "not replacing it (--force replaces it)"
            )
    with _signals_ignored():  # the record and the weights change together, or neither
        if record is not None:
            write_text_atomic(Path(record) / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        with shipping():
            card = shipping_card(predictor, metrics)
            export_weights(predictor.model, card, target)
            write_shipped_graph(predictor, card, target)
    replaced = None if shipped is None else (shipped.card.metrics or {})
    return Shipped(target, metrics, replaced, figures)


def ship_graphs(weights_dir: Path = PACKAGE_WEIGHTS_DIR) -> list[Path]:
    """`ferlab ship --graphs`: the ONNX graph beside each shipped weights file, made again
    from those weights as `ship` makes it (for weights shipped before graphs were)."""
    written = []
    for weights in sorted(Path(weights_dir).glob("*.pt")):
        predictor = load_model(weights, runtime="torch")
        with _signals_ignored(), shipping():
            written.append(write_shipped_graph(predictor, predictor.card, weights))
    return written


def refuse_another_kind(candidate: Predictor, shipped: Predictor, name: str) -> None:
    """A shipped name keeps its classes and preprocessing: code that uses it relies on both."""
    if tuple(candidate.classes) != tuple(shipped.classes):
        raise FerlabError(
            f"the shipped {name} answers {', '.join(shipped.classes)}; this run answers "
            f"{', '.join(candidate.classes)}: a shipped name keeps its classes"
        )
    if candidate.preprocess != shipped.preprocess:
        raise FerlabError(
            f"the shipped {name} prepares faces as {shipped.preprocess.to_dict()}; this run as "
            f"{candidate.preprocess.to_dict()}: a shipped name keeps its preprocessing"
        )


def shipped_figures(
    candidate: Predictor, shipped: Predictor, data: str | Path, name: str, force: bool
) -> dict | None:
    """The shipped model's figures on the faces the candidate was measured on: its validation
    split (which must be the candidate's: a run selected on other faces may have trained on
    these) and PublicTest, plain and TTA. None when forced past another split: nothing is
    compared then."""
    ours, theirs = validation_split_of(candidate), validation_split_of(shipped)
    if set(ours.hashes or ours.ids) != set(theirs.hashes or theirs.ids):
        if force:
            return None
        raise FerlabError(
            f"this run was selected on another validation split than the shipped {name}; "
            "their validation figures are not comparable (train on the same split, or --force)"
        )
    figures = {}
    for split in ("val", "PublicTest"):
        faces = select_split(shipped if split == "val" else candidate, data, split)
        plain = evaluate(shipped, faces, split=split).report
        tta = evaluate(shipped, faces, tta=True, split=split).report
        figures[split] = {"n": plain["n"], "accuracy": plain["accuracy"],
                          "accuracy_tta": tta["accuracy"]}  # fmt: skip
    return figures


@contextmanager
def _signals_ignored():
    """Ctrl-C and SIGTERM are ignored while the block (ship's last step) runs: an interrupted
    ship replaced nothing, and a ship that replaced the model finishes and says so. (Python
    runs signal handlers in the main thread only, so replacing them there covers every
    thread's signals; masking would not, as torch's threads would take the signal.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.signal(s, lambda *_: None) for s in stops}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def export_files(
    model_ref: str | Path,
    onnx: Path | None = None,
    weights: Path | None = None,
    metrics: Path | None = None,
    int8_data: str | Path | None = None,
    force: bool = False,
) -> list[str]:
    """`ferlab export`: the model as an ONNX graph (`onnx`; int8, calibrated on its
    validation faces read from `int8_data`, when given) and/or a self-describing weights file
    (`weights`, with the measured figures of the JSON file `metrics`). One line per file
    written, saying what it is."""
    if not onnx and not weights:
        raise FerlabError("nothing to export: give --onnx OUT and/or --weights OUT")
    if int8_data is not None and not onnx:
        raise FerlabError("--int8 quantizes the --onnx export: give --onnx OUT and --data DATA")
    for target in (onnx, weights):
        if target:
            new_output_file(target, force)
    predictor = load_model(model_ref, runtime="torch")
    written = []
    if weights:
        measured = None
        if metrics:
            try:
                measured = json.loads(Path(metrics).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise FerlabError(f"{metrics}: not a readable JSON file ({e})") from None
        export_weights(predictor.model, shipping_card(predictor, measured), weights)
        written.append(f"{weights} ({_mb(weights)})")
    if onnx and int8_data is not None:
        val = select_split(predictor, int8_data, "val")
        export_onnx_int8(predictor, onnx, val, val.labels)
        written.append(f"{onnx} ({_mb(onnx)}, int8, calibrated on {len(val)} validation faces)")
    elif onnx:
        export_onnx(predictor, onnx)
        written.append(f"{onnx} ({_mb(onnx)})")
    return written


def _mb(path: Path) -> str:
    return f"{Path(path).stat().st_size / 1e6:.1f} MB"


def write_ensemble(
    members: list[str],
    out: Path,
    weights: list[float] | None = None,
    choose_on: str | Path | None = None,
    tta: bool = False,
    force: bool = False,
) -> WeightChoice | None:
    """`ferlab ensemble`: one model averaging `members` (MODEL_REFs of one validation split),
    written to `out` as a weights file every command takes. The members' weights are
    `weights` (default: equal) or, with `choose_on` (their data), chosen on their validation
    split (with their TTA answers when `tta`); the choice is returned and kept in the card."""
    if len(members) < 2:
        raise FerlabError("an ensemble needs at least two members")
    refuse_special_file(out)
    for ref in members:  # --force would replace the member it is about to read
        if Path(out).resolve() == resolve_checkpoint(ref).resolve():
            raise FerlabError(f"{out}: is the member {ref} itself; choose another --out")
    new_output_file(out, force)
    if choose_on is not None and weights:
        raise FerlabError("--choose-weights needs --data and no --weights")
    if tta and choose_on is None:
        raise FerlabError("--data and --tta are for --choose-weights")
    if weights is not None and len(weights) != len(members):
        raise FerlabError(f"--weights: {len(weights)} weights for {len(members)} members")
    loaded = [load_model(ref, runtime="torch") for ref in members]
    net, card = ensemble_of(loaded, weights)  # refuses members of different splits first
    choice = None
    if choose_on is not None:
        choice = validation_choice(loaded, choose_on, tta)
        net, card = ensemble_of(loaded, list(choice.weights))
        chosen = asdict(choice) | {"weights": list(choice.weights), "tta": tta}
        card = replace(card, metrics={"weights_chosen": chosen})
    export_weights(net, card, out)
    return choice
