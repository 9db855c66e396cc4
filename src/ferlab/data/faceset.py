import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from ferlab.data.labels import EMOTIONS, UNLABELED, split_order
from ferlab.errors import FerlabError


def content_hashes(images: np.ndarray) -> np.ndarray:
    """(N,) 16-hex-digit hash of each face's pixels: the same face has the same hash in every
    container (zip, folder, CSV), and exact duplicates share one."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    return np.array(
        [hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest() for row in flat], dtype="<U16"
    )


@dataclass(frozen=True)
class FaceSet:
    """Faces with labels, split names, stable ids and content hashes, aligned on the first axis.

    `ids` say where a face came from (path in its folder or zip, or CSV row); `hashes` say what
    it is (its decoded pixels before any preprocessing), so saved splits match faces by content
    whatever the container.
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, UNLABELED (-1) where the source has no label
    splits: np.ndarray  # (N,) str: Training / PublicTest / PrivateTest / Test / Unsplit
    ids: np.ndarray  # (N,) str: path inside the source, or "<file.csv>:<row or id>"
    source: str = ""
    resized: int = 0  # faces that were not 48x48 in the source
    preprocess: dict = field(default_factory=dict)
    hashes: np.ndarray | None = None  # (N,) content hashes; computed from `images` when None
    # The class names `labels` index (FER2013's 7, or FER+'s 8), and FER+'s raters' votes:
    # (N, 10) counts over FERPLUS_VOTES, or None for single-label data.
    classes: tuple[str, ...] = EMOTIONS
    votes: np.ndarray | None = None

    def __post_init__(self):
        if self.hashes is None:  # readers build raw faces: hash them before any preprocessing
            object.__setattr__(self, "hashes", content_hashes(self.images))

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
            hashes=self.hashes[index],
            votes=None if self.votes is None else self.votes[index],
        )

    def only_labelled(self) -> "FaceSet":
        """The faces that have a label (FER+: a majority label)."""
        return self.select(self.labels != UNLABELED)

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
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def summary(self) -> dict:
        """{"splits": {name: {"total": n, "per_class": {...}}}} as `ferlab data info` prints."""
        out = {}
        for name in self.split_names:
            part = self.split(name)
            entry: dict = {"total": len(part), "per_class": part.class_counts()}
            unlabeled = int((part.labels == UNLABELED).sum())
            if unlabeled:
                entry["unlabeled"] = unlabeled
            if part.votes is not None:
                entry["votes"] = vote_summary(part.votes)
            out[name] = entry
        return {"source": self.source, "total": len(self), "resized": self.resized, "splits": out}


def vote_summary(votes: np.ndarray) -> dict:
    """What `ferlab data info` says of FER+ votes: faces per majority class (FERPlus's rule),
    those left out and why, and how far the raters agree (the top class's share of the votes)."""
    from ferlab.data.labels import FERPLUS_CLASSES
    from ferlab.data.votes import LEFT_OUT, majority_labels

    labels = majority_labels(votes)
    totals = votes.sum(1).clip(min=1)
    kept = {name: int((labels == i).sum()) for i, name in enumerate(FERPLUS_CLASSES)}
    return {
        "majority": kept,
        "left_out": {name: int((labels == code).sum()) for name, code in LEFT_OUT.items()},
        "kept": int((labels >= 0).sum()),
        "mean_agreement": round(float((votes.max(1) / totals).mean()), 4),
        "raters": {
            str(k): int(n)
            for k, n in zip(*np.unique(votes.sum(1), return_counts=True), strict=True)
        },
    }


def duplicate_summary(faces: FaceSet) -> dict:
    """Exact duplicates (same decoded pixels) within and across splits, and blank faces:
    {"within": {split: {groups, extra_copies, label_conflicts}}, "across": {"B in A": faces of
    B with a copy in A}, "blank": {split: faces of one uniform gray}}."""
    within, across, blank = {}, {}, {}
    for name in faces.split_names:
        part = faces.split(name)
        groups, group_of, counts = np.unique(part.hashes, return_inverse=True, return_counts=True)
        pairs = set(zip(group_of.tolist(), part.labels.tolist(), strict=True))
        n_labels = np.bincount([g for g, _ in pairs], minlength=len(groups))
        within[name] = {
            "groups": int((counts > 1).sum()),
            "extra_copies": int((counts - 1).sum()),
            "label_conflicts": int((n_labels > 1).sum()),
        }
        flat = part.images.reshape(len(part), -1)
        blank[name] = int((flat.min(1) == flat.max(1)).sum())
    names = faces.split_names
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            copies = np.isin(faces.split(b).hashes, faces.split(a).hashes)
            across[f"{b} in {a}"] = int(copies.sum())
    return {"within": within, "across": across, "blank": blank}


def summary_lines(summary: dict) -> list[str]:
    """What `ferlab data info` says below its table, from `FaceSet.summary()` with
    "duplicates" (`duplicate_summary`): FER+'s majority labels, then identical faces."""
    lines = []
    for split, entry in summary["splits"].items():
        if "votes" in entry:  # FER+
            v = entry["votes"]
            gone = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in v["left_out"].items())
            lines.append(
                f"{split}: {v['kept']} faces with a majority label (FERPlus's rule); left out: "
                f"{gone}; raters' mean agreement {v['mean_agreement']:.1%}"
            )
    dup = summary["duplicates"]
    for split, d in dup["within"].items():
        lines.append(
            f"{split}: {d['groups']} groups of identical faces ({d['extra_copies']} extra copies,"
            f" {d['label_conflicts']} with disagreeing labels), {dup['blank'][split]} blank faces"
        )
    for pair, n in dup["across"].items():
        lines.append(f"{pair}: {n} faces with an identical copy")
    return lines


def only_face_crops(faces: FaceSet, hint: str) -> FaceSet:
    """`faces` when each was a 48x48 face crop in its source. Other sizes are photos (or
    crops of another size) that reading squashed to 48x48: scored as faces they would give a
    figure of nothing, so they are refused with `hint` (what to pass instead)."""
    if faces.resized:
        raise FerlabError(
            f"{faces.source}: {faces.resized} of its {len(faces)} images are not 48x48 face "
            f"crops (photos?); {hint}"
        )
    return faces
