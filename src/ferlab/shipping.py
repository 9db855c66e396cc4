"""`ship()`: the one way a trained model enters the package's weights folder.

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
from dataclasses import dataclass
from pathlib import Path

from ferlab.atomic import PACKAGE_WEIGHTS_DIR, shipping, write_text_atomic
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate, select_split
from ferlab.export import export_weights, shipping_card
from ferlab.inference import PACKAGE_MODELS, Predictor, load_model, validation_split_of
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
            export_weights(predictor.model, shipping_card(predictor, metrics), target)
    replaced = None if shipped is None else (shipped.card.metrics or {})
    return Shipped(target, metrics, replaced, figures)


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
