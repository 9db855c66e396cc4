"""Validation splits carved from Training, saved so that any later command reproduces them."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ferlab.data.faceset import FaceSet
from ferlab.errors import FerlabError
from ferlab.io import write_text_atomic


@dataclass(frozen=True)
class ValidationSplit:
    ids: list[str]  # ids of the validation faces, in the order they were drawn
    fraction: float
    seed: int
    fingerprint: str = ""  # of the data the split was drawn from

    def apply(self, faces: FaceSet) -> tuple[FaceSet, FaceSet]:
        """(train, val) from the Training split of `faces`."""
        train = faces.split("Training")
        return train.select(~np.isin(train.ids, self.ids)), faces.select_ids(self.ids)

    def save(self, path: str | Path) -> None:
        write_text_atomic(Path(path), json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ValidationSplit":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls(
                ids=list(d["ids"]),
                fraction=float(d["fraction"]),
                seed=int(d["seed"]),
                fingerprint=d.get("fingerprint", ""),
            )
        except FileNotFoundError:
            raise FerlabError(f"{path}: no such split file") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FerlabError(f"{path}: not a ferlab split file ({e})") from None


def carve_validation(
    faces: FaceSet, fraction: float = 0.1, seed: int = 0, fingerprint: str = ""
) -> ValidationSplit:
    """Stratified, seeded draw of `fraction` of each class of the Training split."""
    if not 0 < fraction < 1:
        raise FerlabError(f"validation fraction must lie strictly between 0 and 1, got {fraction}")
    train = faces.split("Training")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(train.labels):
        members = np.flatnonzero(train.labels == label)
        n = int(round(len(members) * fraction))
        if n == 0 and len(members) > 1:
            n = 1  # every class present in Training is represented in validation
        chosen.extend(rng.choice(members, size=n, replace=False).tolist())
    chosen.sort()
    return ValidationSplit(train.ids[chosen].tolist(), fraction, seed, fingerprint)
