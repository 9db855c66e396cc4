"""Write a FaceSet in any supported format; reading the output back gives the same faces.

Each writer builds its output in a temporary folder beside OUT and renames it into place, so
an interrupted convert leaves no half-written dataset; an existing OUT is never replaced.
"""

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ferlab.atomic import FULL, current_umask, disk_full, refuse_package_weights
from ferlab.data.faceset import FaceSet
from ferlab.data.labels import (
    EMOTIONS,
    FERPLUS_SPLITS,
    FORMATS,
    SPLIT_FILE_PREFIX,
    UNLABELED,
    canonical_emotion,
)
from ferlab.errors import FerlabError

# Formats of one FER2013 label per face: FER+ votes, or classes FER2013 lacks, do not fit.
SINGLE_LABEL = ("folders", "fer2013-csv", "ntu-csv")
_SPLIT_FOLDER = {"Training": "train", "PublicTest": "test", "PrivateTest": "test", "Test": "test"}


def convert(faces: FaceSet, fmt: str, out: str | Path) -> Path:
    writers: dict[str, Callable[[FaceSet, Path], None]] = {
        "folders": _write_folders,
        "fer2013-csv": _write_fer2013,
        "ntu-csv": _write_ntu,
        "ferplus": _write_ferplus,
    }
    if fmt not in writers:
        raise FerlabError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    refuse_package_weights(out)
    if out.exists():
        raise FerlabError(f"{out}: already exists; choose a new output path")
    if fmt in SINGLE_LABEL:
        faces = as_fer2013_labels(faces, fmt)
    elif faces.votes is None:
        raise FerlabError(
            f"{faces.source}: one label per face, no raters' votes; the ferplus format holds "
            "FER+ votes (choose folders, fer2013-csv or ntu-csv)"
        )
    if fmt in ("folders", "fer2013-csv") and (faces.labels == UNLABELED).any():
        n = int((faces.labels == UNLABELED).sum())
        raise FerlabError(f"{faces.source}: {n} faces have no label; the {fmt} format needs one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's folder is owner-only
        writers[fmt](faces, tmp)
        tmp.rename(out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in FULL:
            raise FerlabError(disk_full(out, "nothing of it is left")) from None
        raise
    return out


def as_fer2013_labels(faces: FaceSet, fmt: str) -> FaceSet:
    """`faces` labelled by FER2013's class ids, mapped by name; refused when it carries votes
    (the format would drop them) or a class FER2013 lacks."""
    if faces.votes is not None:
        raise FerlabError(
            f"{faces.source}: FER+ data (each face's votes over {len(faces.classes)} classes); "
            f"the {fmt} format holds one FER2013 label per face and would lose the votes: "
            "use --format ferplus"
        )
    if tuple(faces.classes) == EMOTIONS:
        return faces
    names = [canonical_emotion(c) for c in faces.classes]
    lacking = sorted({n for n in names if n not in EMOTIONS})
    if lacking:
        raise FerlabError(
            f"{faces.source}: class {', '.join(lacking)} has no FER2013 label; the {fmt} format "
            "holds FER2013's 7 classes"
        )
    ids = np.array([EMOTIONS.index(n) for n in names])
    labels = np.where(faces.labels == UNLABELED, UNLABELED, ids[faces.labels.clip(0)])
    return replace(faces, labels=labels, classes=EMOTIONS)


def _write_ferplus(faces: FaceSet, root: Path) -> None:
    """FERPlus's layout (what its generate_training_data.py writes): a folder per split with
    the faces as PNG and label.csv (file name, face box, the 10 vote counts), no header."""
    folder_of = {split: folder for folder, split in FERPLUS_SPLITS.items()}
    unknown = sorted(set(faces.split_names) - set(folder_of))
    if unknown:
        raise FerlabError(f"{faces.source}: split {', '.join(unknown)} has no FER+ folder")
    for split in faces.split_names:
        folder = root / folder_of[split]
        folder.mkdir()
        rows = io.StringIO(newline="")
        w = csv.writer(rows)
        for k in np.flatnonzero(faces.splits == split):
            name = f"fer{k:07d}.png"
            ok, png = cv2.imencode(".png", faces.images[k])
            (folder / name).write_bytes(png.tobytes())
            w.writerow([name, "(0, 0, 48, 48)", *(int(v) for v in faces.votes[k])])
        (folder / "label.csv").write_text(rows.getvalue())


def _pixel_text(face: np.ndarray) -> str:
    return " ".join(map(str, face.reshape(-1).tolist()))


def _write_folders(faces: FaceSet, root: Path) -> None:
    for k in range(len(faces)):
        split = str(faces.splits[k])
        folder = root / _SPLIT_FOLDER[split] if split in _SPLIT_FOLDER else root
        # The running index keeps names unique; the prefix carries FER2013's split name.
        name = f"{SPLIT_FILE_PREFIX.get(split, '')}{k:06d}.png"
        path = folder / EMOTIONS[faces.labels[k]] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", faces.images[k])
        path.write_bytes(png.tobytes())


def _write_fer2013(faces: FaceSet, root: Path) -> None:
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for k in range(len(faces)):
            w.writerow([int(faces.labels[k]), _pixel_text(faces.images[k]), faces.splits[k]])


def _write_ntu(faces: FaceSet, root: Path) -> None:
    """Training (labeled) -> train.csv; every other face -> test.csv with ids from 0.

    The format has no labels for test rows; test_labels.csv keeps them where known.
    """
    is_train = (faces.splits == "Training") & (faces.labels != UNLABELED)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["label", "feature"])
    for k in np.flatnonzero(is_train):
        w.writerow([int(faces.labels[k]), _pixel_text(faces.images[k])])
    (root / "train.csv").write_text(buf.getvalue())
    rest = np.flatnonzero(~is_train)
    if not len(rest):
        return
    with (
        open(root / "test.csv", "w", newline="") as f,
        open(root / "test_labels.csv", "w", newline="") as g,
    ):
        w, wl = csv.writer(f), csv.writer(g)
        w.writerow(["id", "feature"])
        wl.writerow(["id", "label", "split"])
        for i, k in enumerate(rest):
            w.writerow([i, _pixel_text(faces.images[k])])
            wl.writerow([i, int(faces.labels[k]), faces.splits[k]])
