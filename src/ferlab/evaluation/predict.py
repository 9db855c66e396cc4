"""Predict emotions for a dataset's faces, or a course test.csv (a Kaggle submission)."""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ferlab.atomic import write_text_atomic
from ferlab.data import RAW, load, only_face_crops
from ferlab.data.readers import NTU_TEST_COLUMNS, csv_header
from ferlab.errors import FerlabError
from ferlab.evaluation.evaluate import prediction_rows
from ferlab.inference import Predictor


@dataclass
class Predictions:
    text: str  # the CSV to write
    n: int


def predict(predictor: Predictor, target: Path, tta: bool = False) -> Predictions:
    if not target.exists():
        raise FerlabError(f"{target}: no such file or folder")
    labels = predictor.classes
    if target.suffix.lower() == ".csv" and csv_header(target) == NTU_TEST_COLUMNS:
        faces, _ = load(target, preprocess=RAW)  # the course test.csv -> Kaggle submission
        probs = predictor.probabilities(faces.images, tta)
        ids = [i.split(":", 1)[1] for i in faces.ids]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "label"])
        w.writerows(zip(ids, probs.argmax(1).tolist(), strict=True))
        return Predictions(buf.getvalue(), len(ids))
    if target.suffix.lower() in (".zip", ".csv"):
        hint = "give the photos as a folder (their faces are found, aligned and cropped)"
        faces = only_face_crops(load(target, preprocess=RAW)[0], hint)
        probs = predictor.probabilities(faces.images, tta)
        return Predictions(prediction_rows(faces.ids, probs, labels), len(faces))
    raise FerlabError(f"{target}: not a dataset (.zip or .csv); photos go to ferlab.photos")


def write_predictions(result: Predictions, out: Path) -> None:
    write_text_atomic(out, result.text)
