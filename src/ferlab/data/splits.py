"""Validation splits carved from Training, saved so that any later command reproduces them.

A split is a set of faces identified by content (hash of the decoded pixels), with their source
ids beside for people to read. Carving keeps every group of identical faces on one side, so no
validation face has a copy in the training part, and applying a saved split matches faces by
content, so it holds for the same faces read from any container (zip, folder, fer2013.csv).
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ferlab.atomic import write_text_atomic
from ferlab.data.cache import FINGERPRINT_PREFIX, fingerprint
from ferlab.data.faceset import FaceSet
from ferlab.errors import FerlabError

SPLIT_VERSION = 2


@dataclass(frozen=True)
class ValidationSplit:
    ids: list[str]  # source ids of the validation faces (for people; matching uses hashes)
    fraction: float
    seed: int  # the split seed, independent of the training seed
    fingerprint: str = ""  # of the Training faces the split was carved from
    hashes: list[str] = field(default_factory=list)  # content hashes, aligned with ids
    version: int = 1  # 1: ids only, from ferlab 0.1 (not duplicate-aware)

    def apply(self, faces: FaceSet) -> tuple[FaceSet, FaceSet]:
        """(train, val) from the Training split of `faces`; FerlabError when the data is not
        the data the split was carved from."""
        train = faces.split("Training")
        if not self.hashes:  # a version-1 split: its ids name the faces
            val = self._legacy_val(faces)
            return train.select(~np.isin(train.ids, self.ids)), val
        self.check_data(train)
        in_val = np.isin(train.hashes, self.hashes)
        return train.select(~in_val), train.select(in_val)

    def check_data(self, train: FaceSet) -> None:
        """Refuse Training faces other than those the split was carved from."""
        missing = sorted(set(self.hashes) - set(train.hashes.tolist()))
        if missing:
            raise FerlabError(
                f"{train.source}: {len(missing)} faces of the validation split are not among its "
                f"Training faces{self._where(missing)}; the split was made from other data"
            )
        here = fingerprint(train)
        if self.fingerprint.startswith(FINGERPRINT_PREFIX) and self.fingerprint != here:
            raise FerlabError(
                f"{train.source}: its Training faces (fingerprint {here}) differ from those the "
                f"validation split was carved from (fingerprint {self.fingerprint})"
            )

    def _where(self, missing: list[str]) -> str:
        k = self.hashes.index(missing[0])
        return f" (first: {self.ids[k]})" if k < len(self.ids) else ""

    def _legacy_val(self, faces: FaceSet) -> FaceSet:
        val = faces.select_ids(self.ids)
        outside = val.splits != "Training"
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise FerlabError(
                f"{faces.source}: the validation split names {int(outside.sum())} faces outside "
                f"Training (first: {val.ids[k]}, in {val.splits[k]})"
            )
        return val

    def save(self, path: str | Path) -> None:
        write_text_atomic(Path(path), json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ValidationSplit":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            split = cls(
                ids=[str(k) for k in d["ids"]],
                fraction=float(d["fraction"]),
                seed=int(d["seed"]),
                fingerprint=str(d.get("fingerprint", "")),
                hashes=[str(h) for h in d.get("hashes", [])],
                version=int(d.get("version", 1)),
            )
        except FileNotFoundError:
            raise FerlabError(f"{path}: no such split file") from None
        except IsADirectoryError:
            raise FerlabError(f"{path}: is a folder, not a split file") from None
        except RecursionError:  # json nests without bound
            raise FerlabError(f"{path}: not a ferlab split file (nested too deeply)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise FerlabError(f"{path}: not a ferlab split file ({e})") from None
        if split.hashes and len(split.hashes) != len(split.ids):
            raise FerlabError(f"{path}: not a ferlab split file (ids and hashes differ in length)")
        return split

    def same_faces(self, other: "ValidationSplit") -> bool:
        if self.hashes and other.hashes:
            return set(self.hashes) == set(other.hashes)
        return set(self.ids) == set(other.ids)


def carve_validation(faces: FaceSet, fraction: float = 0.1, seed: int = 0) -> ValidationSplit:
    """Stratified, seeded draw of about `fraction` of each class of the Training split, whole
    groups of identical faces at a time (a group counts for its most frequent label)."""
    if not 0 < fraction < 1:
        raise FerlabError(f"validation fraction must lie strictly between 0 and 1, got {fraction}")
    train = faces.split("Training")
    groups, group_of = np.unique(train.hashes, return_inverse=True)
    # Faces without a label (FER+'s with no majority) are a stratum of their own.
    strata = np.where(train.labels < 0, train.labels.max() + 1, train.labels)
    votes = np.zeros((len(groups), int(strata.max()) + 1), dtype=np.int64)
    np.add.at(votes, (group_of, strata), 1)
    group_label, group_size = votes.argmax(1), votes.sum(1)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(group_label):
        members = rng.permutation(np.flatnonzero(group_label == label))
        sizes = group_size[members]
        target = round(sizes.sum() * fraction)
        if target == 0 and len(members) > 1:
            target = 1  # every class present in Training is represented in validation
        # Groups in drawn order while the faces taken stay at or under the target.
        take = int(np.searchsorted(np.cumsum(sizes), target, side="right"))
        chosen.extend(members[: max(take, 1 if target else 0)].tolist())
    in_val = np.isin(group_of, chosen)
    return ValidationSplit(
        ids=train.ids[in_val].tolist(),
        fraction=fraction,
        seed=seed,
        fingerprint=fingerprint(train),
        hashes=train.hashes[in_val].tolist(),
        version=SPLIT_VERSION,
    )
