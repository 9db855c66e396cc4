"""Photo accuracy: a labelled folder (or zip) of photos, `<emotion>/<photo>`, through the photo
path a user meets (detect, align, crop, classify; the largest face of each photo). A photo
where no face is found counts as wrong and is listed."""

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ferlab.atomic import write_text_atomic
from ferlab.data.images import gray_array, is_image_name
from ferlab.data.labels import emotion_id
from ferlab.data.readers import image_files, zip_reader
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate, select_split, write_evaluation
from ferlab.evaluation.metrics import confusion_counts, normalize_rows
from ferlab.inference import Predictor
from ferlab.photos.analyze import analyze_gray, read_photo
from ferlab.photos.detect import DEFAULT_DETECTOR, create_detector


def labelled_photos(source: Path) -> list[tuple[str, int, Callable[[], bytes]]]:
    """(path, FER2013 label id, reader of the bytes) of each photo under an emotion folder."""
    source = Path(source)
    if source.is_dir():
        files = [(rel, full.read_bytes) for rel, full in image_files(source)]
    elif source.is_file() and source.suffix.lower() == ".zip":
        try:
            zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as e:
            raise FerlabError(f"{source}: not a readable zip ({e})") from None
        names = sorted(n for n in zf.namelist() if is_image_name(n) and "__MACOSX/" not in n)
        files = [(n, zip_reader(zf, n)) for n in names]
    else:
        raise FerlabError(f"{source}: not a folder or .zip of labelled photos")
    photos = []
    for rel, read in files:
        parts = rel.split("/")
        label = emotion_id(parts[-2]) if len(parts) >= 2 else None
        if label is None:
            raise FerlabError(
                f"{source}: {rel}: not under an emotion folder (expected <emotion>/<photo>)"
            )
        photos.append((rel, label, read))
    if not photos:
        raise FerlabError(f"{source}: no photos found")
    return photos


def evaluate_photos(
    predictor: Predictor,
    source: Path,
    detector: str = DEFAULT_DETECTOR,
    tta: bool = False,
    min_face: int | None = None,
) -> dict:
    """The report `ferlab evaluate MODEL --data PHOTOS --detector NAME [--tta] --json` prints;
    `tta`: each face's probabilities averaged over flips and crops, as on FER2013."""
    from ferlab.data.labels import EMOTIONS, class_mapping
    from ferlab.inference import TTA_MODE

    classes = predictor.classes
    mapping = class_mapping(EMOTIONS, classes)
    missing = [e for e in EMOTIONS if e not in mapping]
    if missing:
        raise FerlabError(f"the model has no class for {', '.join(missing)} of the photo labels")
    to_model = np.array([classes.index(mapping[e]) for e in EMOTIONS])
    detect = create_detector(detector, min_face)
    truth, pred, no_face = [], [], []
    for name, label, read in labelled_photos(source):
        gray = gray_array(read_photo(read(), name))
        result = analyze_gray(predictor, gray, detect, name, tta)
        truth.append(int(to_model[label]))
        if not result.faces:
            no_face.append(name)
            pred.append(-1)
            continue
        largest = max(result.faces, key=lambda f: f.box.w * f.box.h)
        pred.append(int(largest.probs.argmax()))
    y, p = np.array(truth), np.array(pred)
    found = p >= 0
    per_class = {}
    for i, name in enumerate(classes):  # recall counts a photo without a face as missed
        n = int((y == i).sum())
        per_class[name] = {
            "recall": round(float(((y == i) & (p == i)).sum() / n), 4) if n else None,
            "photos": n,
            "no_face": int(((y == i) & ~found).sum()),
        }
    counts = confusion_counts(y[found], p[found], len(classes))
    return {
        "data": str(source),
        "detector": detector,
        "tta": TTA_MODE if tta else None,
        "n": len(y),
        "faces_found": int(found.sum()),
        "found_share": round(float(found.mean()), 4),
        "accuracy": round(float((y == p).mean()), 4),
        "labels": classes,
        "per_class": per_class,
        "confusion": counts.tolist(),
        "confusion_normalized": np.round(normalize_rows(counts), 4).tolist(),
        "no_face": no_face,
        **({} if mapping == {e: e for e in EMOTIONS} else {"class_mapping": mapping}),
    }


def evaluation_report(
    predictor: Predictor,
    data: str | Path,
    split: str | None = None,
    tta: bool = False,
    detector: str | None = None,
    name: str = "",
    out: Path | None = None,
    min_face: int | None = None,
) -> dict:
    """`ferlab evaluate`: the model on a dataset's `split` (faces), or with a `detector` on a
    labelled folder/zip of photos (the photo path); the report as `--json` prints it, its
    files (eval.json, and for faces the confusion matrix and predictions) written into `out`."""
    if detector is not None:
        report = evaluate_photos(predictor, data, detector, tta, min_face) | {"model": name}
        if out is not None:
            write_text_atomic(Path(out) / "eval.json", json.dumps(report, indent=1) + "\n")
        return report
    faces = select_split(predictor, data, split)
    ev = evaluate(predictor, faces, tta=tta, name=name, split=split or faces.split_names[0])
    if out is not None:
        write_evaluation(ev, out)
    return ev.report


def evaluation_lines(r: dict, data: str | Path) -> list[str]:
    """What `ferlab evaluate` says of the report `evaluation_report` gives for `data`."""
    tta = f" (TTA {r['tta']})" if r.get("tta") else ""
    if "found_share" in r:  # photos through the photo path
        return [
            f"{r['model']} on photos {data} ({r['detector']}{', TTA' if r['tta'] else ''}): "
            f"n={r['n']} accuracy "
            f"{r['accuracy']:.2%}, a face found in {r['faces_found']} ({r['found_share']:.1%})",
            *(f"no face: {name}" for name in r["no_face"]),
        ]
    lines = [
        f"{r['model']} on {r['split']}: n={r['n']} accuracy {r['accuracy']:.2%} "
        f"(majority class {r['majority_accuracy']:.2%}) macro-F1 {r['macro_f1']:.3f}{tta}"
    ]
    if "class_mapping" in r:
        pairs = ", ".join(f"{a} -> {b}" for a, b in r["class_mapping"].items() if a != b)
        lines.append(
            f"classes mapped to the model's: {pairs or 'same names'}; "
            f"{r['left_out_unmapped']} faces of classes the model lacks left out"
        )
    if "votes" in r:
        v = r["votes"]
        lines.append(
            f"against the raters' votes: the answer got the most votes on {v['top_voted']:.2%} "
            f"of the faces; {v['vote_share']:.2%} of a face's votes went to it on average"
        )
    return lines
