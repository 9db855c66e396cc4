"""Soft targets from a trained teacher: its log-probabilities on the training faces, computed
once per (teacher file, faces) and cached under FERLAB_CACHE, so a student's epochs cost only
the student (as in Hinton et al.'s distillation, with the teacher's answers precomputed)."""

import hashlib
import io
from pathlib import Path

import numpy as np

from ferlab.atomic import write_bytes_atomic
from ferlab.data.faceset import FaceSet
from ferlab.data.preprocess import Preprocess
from ferlab.data.splits import ValidationSplit
from ferlab.errors import FerlabError


def check_teacher(ref: str, split: ValidationSplit, preprocess: Preprocess) -> None:
    """Refuse a teacher that trained on any of the student's validation faces (its answers
    would carry them into training) or that sees faces preprocessed otherwise."""
    from ferlab.inference import load_model

    teacher = load_model(ref, runtime="torch")
    if teacher.preprocess != preprocess:
        raise FerlabError(
            f"teacher {ref} takes faces preprocessed as {teacher.preprocess.to_dict()}, the "
            f"student {preprocess.to_dict()}: train them on the same preprocessing"
        )
    check_held_out(teacher, f"teacher {ref}", split)


def check_held_out(model, role: str, split: ValidationSplit) -> None:
    """Refuse a model (a teacher, a fine-tuning start) that trained on any of this run's
    validation faces: its weights would carry them into training."""
    from ferlab.inference import validation_split_of

    held_out = set(validation_split_of(model).hashes)
    seen = len(set(split.hashes) - held_out)
    if seen:
        raise FerlabError(
            f"{role} trained on {seen} of this run's validation faces; give this run its "
            "split (--split with its split.json) or a part of it"
        )


def teacher_log_probs(ref: str, faces: FaceSet, tta: bool = False) -> np.ndarray:
    """(N, classes) float32 log-probabilities of the teacher `ref` (a MODEL_REF) for `faces`
    (prepared as it expects them: check_teacher); `tta`: of its probabilities
    averaged over the test-time views (as `ferlab evaluate --tta`), a better teacher for the
    cost of computing them once."""
    from ferlab.data.cache import cache_dir
    from ferlab.inference import resolve_checkpoint

    path = resolve_checkpoint(ref)
    h = hashlib.sha256(Path(path).read_bytes())
    h.update(np.ascontiguousarray(faces.images).tobytes())
    if tta:  # the plain answers keep the cache names they had before this option
        h.update(b"tta")
    cached = cache_dir() / "teacher" / f"{h.hexdigest()[:32]}.npy"
    if cached.is_file():
        return np.load(cached)
    log_probs = np.log(np.clip(_teacher_probabilities(path, faces, tta), 1e-8, 1.0))
    buffer = io.BytesIO()
    np.save(buffer, log_probs.astype(np.float32))
    write_bytes_atomic(cached, buffer.getvalue())
    return log_probs.astype(np.float32)


def _teacher_probabilities(path: Path, faces: FaceSet, tta: bool = False) -> np.ndarray:
    from ferlab.inference import load_model
    from ferlab.runtime import default_runtime

    teacher = load_model(path, runtime=default_runtime())
    return teacher.probabilities(faces, tta=tta)
