"""FER2013 in any of its distributions, as uint8 arrays with labels, splits and stable ids."""

import os
from dataclasses import replace
from pathlib import Path

from ferlab.data.cache import cache_dir, fingerprint, read_cached
from ferlab.data.faceset import (
    FaceSet,
    content_hashes,
    duplicate_summary,
    only_face_crops,
    summary_lines,
)
from ferlab.data.labels import EMOTIONS, NUM_CLASSES, SPLITS, UNLABELED
from ferlab.data.preprocess import DEFAULT_PREPROCESS, RAW, Preprocess, equalize_hist
from ferlab.data.readers import read_source
from ferlab.data.splits import ValidationSplit, carve_validation
from ferlab.data.writers import FORMATS, convert
from ferlab.errors import FerlabError

GET_FER2013 = (
    "no FER2013 data: pass --data or set FERLAB_DATA to fer2013.csv (Kaggle: 'Challenges in "
    "Representation Learning: Facial Expression Recognition Challenge') or a folder/zip of "
    "train/ and test/ images (Kaggle dataset msambare/fer2013)"
)


def default_data() -> Path:
    """FERLAB_DATA, else the shared copy beside the project (run from the project root)."""
    if os.environ.get("FERLAB_DATA"):
        return Path(os.environ["FERLAB_DATA"])
    shared = Path("../shared/data/fer2013.zip")
    if shared.is_file():
        return shared
    raise FerlabError(GET_FER2013)


def load(
    path: str | Path, preprocess: Preprocess = DEFAULT_PREPROCESS, use_cache: bool = True
) -> tuple[FaceSet, str]:
    """(faces with `preprocess` applied, fingerprint of the raw data)."""
    raw, fp = read_cached(path, use_cache=use_cache)
    faces = replace(raw, images=preprocess.apply(raw.images), preprocess=preprocess.to_dict())
    return faces, fp


__all__ = [
    "EMOTIONS",
    "FORMATS",
    "NUM_CLASSES",
    "RAW",
    "SPLITS",
    "UNLABELED",
    "DEFAULT_PREPROCESS",
    "FaceSet",
    "Preprocess",
    "ValidationSplit",
    "cache_dir",
    "carve_validation",
    "content_hashes",
    "duplicate_summary",
    "convert",
    "default_data",
    "equalize_hist",
    "fingerprint",
    "load",
    "only_face_crops",
    "read_source",
    "summary_lines",
]
