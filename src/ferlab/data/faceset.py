from dataclasses import dataclass, field, replace

import numpy as np

from ferlab.data.labels import EMOTIONS, UNLABELED, split_order
from ferlab.errors import FerlabError


@dataclass(frozen=True)
class FaceSet:
    """Faces with labels, split names and stable ids, all aligned on the first axis."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, UNLABELED (-1) where the source has no label
    splits: np.ndarray  # (N,) str: Training / PublicTest / PrivateTest / Test / Unsplit
    ids: np.ndarray  # (N,) str: path inside the source, or "<file.csv>:<row or id>"
    source: str = ""
    resized: int = 0  # faces that were not 48x48 in the source
    preprocess: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def split_names(self) -> list[str]:
        return sorted(set(self.splits.tolist()), key=split_order)

    @property
    def labeled(self) -> bool:
        return bool(len(self)) and bool((self.labels != UNLABELED).all())

    def select(self, index: np.ndarray) -> "FaceSet":
        """The subset at a boolean mask or integer index, in that order."""
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            splits=self.splits[index],
            ids=self.ids[index],
        )

    def split(self, name: str) -> "FaceSet":
        if name not in self.split_names:
            have = ", ".join(self.split_names) or "none"
            raise FerlabError(f"{self.source}: has no split '{name}' (it has: {have})")
        return self.select(self.splits == name)

    def select_ids(self, ids: list[str]) -> "FaceSet":
        position = {k: i for i, k in enumerate(self.ids.tolist())}
        missing = [k for k in ids if k not in position]
        if missing:
            raise FerlabError(
                f"{self.source}: {len(missing)} ids of the split file are not in this data "
                f"(first: {missing[0]}); was the split made from other data?"
            )
        return self.select(np.array([position[k] for k in ids], dtype=np.int64))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(EMOTIONS))
        return {name: int(n) for name, n in zip(EMOTIONS, counts, strict=True)}

    def summary(self) -> dict:
        """{"splits": {name: {"total": n, "per_class": {...}}}} as `ferlab data info` prints."""
        out = {}
        for name in self.split_names:
            part = self.split(name)
            entry: dict = {"total": len(part), "per_class": part.class_counts()}
            unlabeled = int((part.labels == UNLABELED).sum())
            if unlabeled:
                entry["unlabeled"] = unlabeled
            out[name] = entry
        return {"source": self.source, "total": len(self), "resized": self.resized, "splits": out}
