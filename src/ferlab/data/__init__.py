"""FER2013 in any of its distributions, as uint8 arrays with labels, splits and stable ids."""

from dataclasses import replace
from pathlib import Path

from ferlab.data.cache import cache_dir, fingerprint, read_cached
from ferlab.data.faceset import FaceSet, content_hashes, duplicate_summary
from ferlab.data.labels import EMOTIONS, NUM_CLASSES, SPLITS, UNLABELED
from ferlab.data.preprocess import DEFAULT_PREPROCESS, RAW, Preprocess, equalize_hist
from ferlab.data.readers import read_source
from ferlab.data.splits import ValidationSplit, carve_validation
from ferlab.data.writers import FORMATS, convert


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
    "equalize_hist",
    "fingerprint",
    "load",
    "read_source",
]
