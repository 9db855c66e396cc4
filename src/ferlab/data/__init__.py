"""FER2013 in any of its distributions, as uint8 arrays with labels, splits and stable ids."""

import os
from pathlib import Path

from ferlab.data.labels import EMOTIONS, FORMATS, NUM_CLASSES, SPLITS, UNLABELED
from ferlab.errors import FerlabError
from ferlab.lazy import lazy_names

# Where each name lives; they load on first use, so that `import ferlab` (and `ferlab --help`)
# does not pay for NumPy and OpenCV.
_LAZY = {
    "cache": ("cache_dir", "fingerprint", "read_cached"),
    "faceset": ("FaceSet", "content_hashes", "duplicate_summary", "only_face_crops",
                "summary_lines"),
    "preprocess": ("DEFAULT_PREPROCESS", "RAW", "Preprocess", "equalize_hist"),
    "readers": ("read_source",),
    "splits": ("ValidationSplit", "carve_validation"),
    "writers": ("convert",),
}  # fmt: skip
__getattr__ = lazy_names(__name__, {n: module for module, ns in _LAZY.items() for n in ns})


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


def load(path: str | Path, preprocess=None, use_cache: bool = True) -> tuple:
    """(faces as a FaceSet with `preprocess` applied, the default when None; fingerprint of the
    raw data)."""
    from dataclasses import replace

    from ferlab.data.cache import read_cached
    from ferlab.data.preprocess import DEFAULT_PREPROCESS

    preprocess = preprocess or DEFAULT_PREPROCESS
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
