"""`ship()`: the one way a trained model enters the package's weights folder.

It measures the run's selected checkpoint where it was selected (validation) and once on
PublicTest, plain and with TTA, records the figures beside the run's training record, and
refuses to replace a shipped model that scored higher on validation unless forced."""

import json
from dataclasses import dataclass
from pathlib import Path

from ferlab.atomic import PACKAGE_WEIGHTS_DIR, shipping, write_text_atomic
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate, select_split
from ferlab.export import export_weights, shipping_card
from ferlab.inference import PACKAGE_MODELS, Predictor, load_model
from ferlab.runs import RunFolder
from ferlab.training import TrainConfig


@dataclass
class Shipped:
    weights: Path
    metrics: dict
    replaced: dict | None  # the metrics of the model it replaced, if one was shipped


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
    (metrics.json). A shipped model with higher validation accuracy stays unless `force`."""
    if name not in PACKAGE_MODELS:
        raise FerlabError(
            f"unknown package model '{name}'; choose one of {', '.join(PACKAGE_MODELS)}"
        )
    run_path = Path(run_path)
    if not RunFolder(run_path).config.is_file():
        raise FerlabError(f"{run_path}: not a ferlab run folder (no config.yaml)")
    target = Path(weights_dir) / f"{name}.pt"
    replaced = None
    if target.is_file():
        replaced = load_model(target, runtime="torch").card.metrics or {}
    predictor = load_model(run_path, runtime="torch")
    metrics = measured_metrics(predictor, RunFolder(run_path), data)
    old = (replaced or {}).get("val", {}).get("accuracy")
    if old is not None and old > metrics["val"]["accuracy"] and not force:
        raise FerlabError(
            f"the shipped {name} scores {old:.2%} on its validation split, this run "
            f"{metrics['val']['accuracy']:.2%}; not replacing it (--force replaces it)"
        )
    if record is not None:
        write_text_atomic(Path(record) / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    with shipping():
        export_weights(predictor.model, shipping_card(predictor, metrics), target)
    return Shipped(target, metrics, replaced)
