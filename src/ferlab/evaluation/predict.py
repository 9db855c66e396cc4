"""Predict emotions for faces: a course test.csv (Kaggle submission), a dataset, or images."""

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferlab.checkpoint import LoadedModel
from ferlab.data import RAW, load
from ferlab.data.images import decode_gray, is_image_name
from ferlab.data.preprocess import to_face_size
from ferlab.data.readers import NTU_TEST_COLUMNS, csv_header
from ferlab.errors import FerlabError
from ferlab.evaluation.evaluate import model_probs, prediction_rows
from ferlab.io import write_text_atomic


@dataclass
class Predictions:
    text: str  # the CSV to write
    n: int
    bad: list[str] = field(default_factory=list)  # one message per unreadable input


def image_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    files = sorted(p for p in target.rglob("*") if p.is_file() and is_image_name(p.name))
    if not files:
        raise FerlabError(f"{target}: no images found")
    return files


def read_faces(paths: list[Path]) -> tuple[list[str], np.ndarray, list[str]]:
    """(readable paths, (N, 48, 48) raw gray faces, messages for unreadable files)."""
    good, faces, bad = [], [], []
    for path in paths:
        try:
            faces.append(to_face_size(decode_gray(path.read_bytes(), str(path))))
            good.append(str(path))
        except FerlabError as e:
            bad.append(str(e))
        except OSError as e:
            bad.append(f"{path}: cannot read ({e.strerror})")
    return good, np.stack(faces) if faces else np.zeros((0, 48, 48), np.uint8), bad


def predict(loaded: LoadedModel, target: Path, tta: bool = False) -> Predictions:
    if not target.exists():
        raise FerlabError(f"{target}: no such file or folder")
    labels = loaded.classes
    pre = loaded.preprocess
    if target.suffix.lower() == ".csv" and csv_header(target) == NTU_TEST_COLUMNS:
        faces, _ = load(target, preprocess=RAW)  # the course test.csv -> Kaggle submission
        probs = model_probs(loaded, pre.apply(faces.images), tta)
        ids = [i.split(":", 1)[1] for i in faces.ids]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "label"])
        w.writerows(zip(ids, probs.argmax(1).tolist(), strict=True))
        return Predictions(buf.getvalue(), len(ids))
    if target.suffix.lower() in (".zip", ".csv"):
        faces, _ = load(target, preprocess=RAW)
        probs = model_probs(loaded, pre.apply(faces.images), tta)
        return Predictions(prediction_rows(faces.ids, probs, labels), len(faces))
    paths, faces, bad = read_faces(image_files(target))
    probs = model_probs(loaded, pre.apply(faces), tta)
    return Predictions(prediction_rows(paths, probs, labels, id_header="path"), len(paths), bad)


def write_predictions(result: Predictions, out: Path) -> None:
    write_text_atomic(out, result.text)
    for message in result.bad:
        print(f"ferlab: skipped {message}", file=sys.stderr)
