"""Evaluate a trained model on a split: metrics, confusion matrix, most-confused table."""

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ferlab.atomic import write_text_atomic
from ferlab.data import RAW, FaceSet, load, only_face_crops
from ferlab.data.labels import class_mapping, model_label_ids
from ferlab.errors import FerlabError
from ferlab.evaluation.metrics import (
    classification_report,
    confusion_counts,
    most_confused,
    most_confused_markdown,
    normalize_rows,
    vote_agreement,
)
from ferlab.inference import TTA_MODE, Predictor, validation_split_of

CONFUSED_THRESHOLD = 0.1


@dataclass
class Evaluation:
    report: dict  # the JSON `ferlab evaluate --json` prints
    probs: np.ndarray  # (N, K)
    faces: FaceSet

    @property
    def normalized(self) -> np.ndarray:
        return normalize_rows(np.array(self.report["confusion"]))


PHOTOS_HINT = "for photos give --detector yunet (faces found, aligned and cropped)"


def select_split(predictor: Predictor, data: str | Path, split: str | None) -> FaceSet:
    """Faces of `split` ('val' = the run's saved split, matched by content and refused for
    other data), preprocessed as the model was trained."""
    raw = only_face_crops(load(data, preprocess=RAW)[0], PHOTOS_HINT)
    if split == "val":
        faces = validation_split_of(predictor).apply(raw)[1]
    elif split is None:
        if len(raw.split_names) != 1:
            raise FerlabError(
                f"{data}: holds splits {', '.join(raw.split_names)}; choose one with --split"
            )
        faces = raw
    else:
        faces = raw.split(split)
    if faces.votes is not None:  # FER+ is evaluated on its majority labels, as in the paper
        faces = faces.only_labelled()
    if not faces.labeled:
        raise FerlabError(
            f"{data}: split {split or faces.split_names[0]} has no labels to "
            "evaluate against; use `ferlab predict` for unlabeled faces"
        )
    return predictor.seen(faces)


def evaluate(
    predictor: Predictor, faces: FaceSet, tta: bool = False, name: str = "", split: str = ""
) -> Evaluation:
    """`faces` read raw or as this model sees them (`Predictor.seen`). Data labelled with
    another class set (FER+ for a FER2013 model, or the other way round) is scored through
    `class_mapping`, faces of a class the model lacks left out; the report states both."""
    labels = predictor.classes
    faces = predictor.seen(faces)
    mapping = None
    data_classes = tuple(faces.classes)
    if data_classes != tuple(labels):
        mapping = class_mapping(faces.classes, labels)
        if not mapping:
            raise FerlabError(
                f"the data's classes ({', '.join(faces.classes)}) share none with model "
                f"{name}'s ({', '.join(labels)})"
            )
        mapped = model_label_ids(faces.labels, faces.classes, labels)
        left_out = int((mapped < 0).sum())
        faces = replace(
            faces.select(mapped >= 0), labels=mapped[mapped >= 0], classes=tuple(labels)
        )
    if faces.labels.max() >= len(labels):
        raise FerlabError(
            f"model {name} knows {len(labels)} classes; the data has label "
            f"{int(faces.labels.max())}"
        )
    probs = predictor.probabilities(faces, tta)
    pred = probs.argmax(1)
    metrics = classification_report(faces.labels, pred, labels)
    report = {
        "model": name,
        "split": split,
        "n": len(faces),
        "accuracy": metrics["accuracy"],
        # Always answering the split's most frequent emotion scores this: a model at or near
        # it has collapsed to one class.
        "majority_accuracy": majority_accuracy(faces.labels),
        "macro_f1": metrics["macro_f1"],
        "labels": labels,
        "per_class": metrics["per_class"],
        "confusion": confusion_counts(faces.labels, pred, len(labels)).tolist(),
        "tta": TTA_MODE if tta else None,
    }
    if mapping is not None:
        report["class_mapping"] = mapping
        report["left_out_unmapped"] = left_out
    if faces.votes is not None:  # FER+: how the answers sit with the ten raters' votes
        back = {m: d for d, m in (mapping or {c: c for c in labels}).items()}
        column = np.array([data_classes.index(back[c]) for c in labels])
        report["votes"] = vote_agreement(faces.votes, column[pred], len(data_classes))
    return Evaluation(report, probs, faces)


def majority_accuracy(labels: np.ndarray) -> float:
    """The accuracy of always predicting the most frequent label."""
    return round(float(np.bincount(labels).max() / len(labels)), 4) if len(labels) else 0.0


def write_evaluation(ev: Evaluation, out: Path) -> dict[str, Path]:
    """eval.json, confusion.png, most_confused.md/.json and predictions.csv under `out`."""
    labels = ev.report["labels"]
    title = (
        f"{ev.report['model']} on {ev.report['split']} (n={ev.report['n']}, "
        f"accuracy {ev.report['accuracy']:.1%})"
    )
    confused = most_confused(ev.normalized, labels, CONFUSED_THRESHOLD)
    files = {
        "json": out / "eval.json",
        "confusion": out / "confusion.png",
        "most_confused_md": out / "most_confused.md",
        "most_confused_json": out / "most_confused.json",
        "predictions": out / "predictions.csv",
    }
    write_text_atomic(files["json"], json.dumps(ev.report, indent=1) + "\n")
    from ferlab.plots import plot_confusion  # matplotlib: the report extra's, loaded to draw

    plot_confusion(ev.normalized, labels, files["confusion"], title)
    write_text_atomic(
        files["most_confused_md"],
        f"# Most confused emotions: {title}\n\n"
        + most_confused_markdown(confused, CONFUSED_THRESHOLD),
    )
    write_text_atomic(files["most_confused_json"], json.dumps(confused, indent=1) + "\n")
    write_text_atomic(
        files["predictions"], prediction_rows(ev.faces.ids, ev.probs, labels, ev.faces.labels)
    )
    return files


def prediction_rows(
    ids, probs: np.ndarray, labels: list[str], truth=None, id_header: str = "id"
) -> str:
    """CSV text: id, [true_label,] label, emotion, p_<emotion>... one row per face."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    truth_col = ["true_label"] if truth is not None else []
    w.writerow([id_header, *truth_col, "label", "emotion", *(f"p_{e}" for e in labels)])
    pred = probs.argmax(1)
    for i, ident in enumerate(ids):
        true = [int(truth[i])] if truth is not None else []
        w.writerow([ident, *true, int(pred[i]), labels[pred[i]], *(f"{p:.5f}" for p in probs[i])])
    return buf.getvalue()
