"""Decode a source once; later reads load uint8 arrays from the cache in well under a second.

The cache lives under FERLAB_CACHE (default ~/.cache/ferlab), never beside the source. Files
(zip, csv) are keyed by a hash of their bytes; folders by their files' paths, sizes and mtimes.
"""

import hashlib
import io
import json
import os
import sys
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ferlab.atomic import write_bytes_atomic
from ferlab.data.faceset import FaceSet
from ferlab.data.labels import EMOTIONS, FERPLUS_SPLITS, canonical_emotion
from ferlab.data.readers import image_files, read_source

FERPLUS_LABELS = [f"{folder}/label.csv" for folder in FERPLUS_SPLITS]

READER_VERSION = 3  # bump when decoding or the cached fields change, so old caches are not reused


def cache_dir() -> Path:
    return Path(os.environ.get("FERLAB_CACHE") or Path.home() / ".cache" / "ferlab")


def source_key(path: Path) -> str:
    h = hashlib.sha256(f"ferlab-reader-{READER_VERSION}\n".encode())
    if path.is_dir():
        # The reader's own walk: a folder it cannot enter fails here too, never a stale hit.
        for rel, full in image_files(path):
            st = full.stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        csv_forms = ("fer2013.csv", "fer2013new.csv", "train.csv", "test.csv", *FERPLUS_LABELS)
        for name in csv_forms:
            if (path / name).is_file():
                st = (path / name).stat()
                h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        beside = path.parent / "fer2013.csv"  # fer2013new.csv's faces are read from it
        if path.suffix.lower() == ".csv" and path.name != beside.name and beside.is_file():
            st = beside.stat()
            h.update(f"fer2013.csv\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


FINGERPRINT_PREFIX = "v2:"  # fingerprints without it (ferlab <= 0.1 runs) depend on face order


def fingerprint(faces: FaceSet) -> str:
    """'v2:' + sha256 of every face's (content hash, label, split), sorted: the same for the same
    faces in any container and in any order."""
    rows = sorted(
        f"{h} {label} {split}"
        for h, label, split in zip(
            faces.hashes.tolist(), faces.labels.tolist(), faces.splits.tolist(), strict=True
        )
    )
    if faces.votes is not None:  # FER+: the votes are the labels
        rows = sorted(
            f"{h} {' '.join(map(str, v))} {split}"
            for h, v, split in zip(
                faces.hashes.tolist(), faces.votes.tolist(), faces.splits.tolist(), strict=True
            )
        )
    return FINGERPRINT_PREFIX + hashlib.sha256("\n".join(rows).encode()).hexdigest()


def read_cached(path: str | Path, use_cache: bool = True) -> tuple[FaceSet, str]:
    """(raw faces, fingerprint), from the cache when this source was decoded before."""
    path = Path(path)
    if not use_cache:
        faces = read_source(path)
        return faces, fingerprint(faces)
    if not (path.is_dir() or path.is_file()):
        return read_source(path), ""  # read_source raises the clear error
    file = cache_dir() / f"{source_key(path)}.npz"
    if file.is_file():
        try:
            with np.load(file) as z:
                meta = json.loads(str(z["meta"]))
                faces = FaceSet(
                    z["images"],
                    z["labels"],
                    z["splits"],
                    z["ids"],
                    source=str(path),
                    resized=meta["resized"],
                    classes=tuple(map(canonical_emotion, meta.get("classes", EMOTIONS))),
                    votes=z["votes"] if "votes" in z.files else None,
                )
            if meta.get("fingerprint") == fingerprint(faces):
                return faces, meta["fingerprint"]
            damage = "its faces do not match its recorded fingerprint"
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            damage = f"{type(e).__name__}: {e}"
        print(f"ferlab: rebuilding a damaged data cache entry {file} ({damage})", file=sys.stderr)
    faces = read_source(path)
    fp = fingerprint(faces)
    _write(file, faces, fp)
    return replace(faces, source=str(path)), fp


def _write(file: Path, faces: FaceSet, fp: str) -> None:
    meta = json.dumps(
        {
            "resized": faces.resized,
            "fingerprint": fp,
            "source": faces.source,
            "classes": list(faces.classes),
        }
    )
    votes = {} if faces.votes is None else {"votes": faces.votes}
    buf = io.BytesIO()
    np.savez(
        buf,
        images=faces.images,
        labels=faces.labels,
        splits=faces.splits,
        ids=faces.ids,
        meta=np.array(meta),
        **votes,
    )
    try:
        write_bytes_atomic(file, buf.getvalue())
    except OSError as e:
        warnings.warn(
            f"ferlab: could not write the data cache at {file} ({e}); the next read decodes again",
            stacklevel=2,
        )
