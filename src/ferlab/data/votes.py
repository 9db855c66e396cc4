"""FER+ votes -> training targets, by the label modes of Barsoum et al. 2016 (FERPlus's rules).

Votes are (N, 10) counts over FERPLUS_VOTES: 8 emotions, then "unknown" and "not a face"."""

import numpy as np

from ferlab.data.labels import FERPLUS_CLASSES

EMOTION_COUNT = len(FERPLUS_CLASSES)
UNKNOWN, NOT_A_FACE = EMOTION_COUNT, EMOTION_COUNT + 1
# Why a face has no majority label: the codes majority_labels gives instead of a class.
LEFT_OUT = {"unknown": -2, "not_a_face": -3, "no_majority": -4}
LABEL_MODES = ("majority", "probability", "crossentropy", "multi-target")


def without_single_votes(votes: np.ndarray) -> np.ndarray:
    """FERPlus counts a class that got one rater's vote as noise."""
    v = np.asarray(votes, dtype=np.float64).copy()
    v[v <= 1] = 0
    return v


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """(N,) the class that holds more than half of the votes left after single votes are
    dropped, else a LEFT_OUT code (unknown or not-a-face won, or no class has a majority)."""
    v = without_single_votes(votes)
    top = v.argmax(1)
    has = v.max(1) > 0.5 * v.sum(1)
    out = np.where(has, top, LEFT_OUT["no_majority"])
    out = np.where(has & (top == UNKNOWN), LEFT_OUT["unknown"], out)
    return np.where(has & (top == NOT_A_FACE), LEFT_OUT["not_a_face"], out).astype(np.int64)


def _distribution_row(v: np.ndarray) -> np.ndarray | None:
    """FERPlus's probability/crossentropy rule for one face: take the top classes (ties
    together, at most 3) until they hold 75% of the votes; unknown or not-a-face among them
    ends the search; kept if they hold more than half of the votes."""
    v, total = v.copy(), v.sum()
    kept, count = np.zeros_like(v), 0
    while kept.sum() < 0.75 * total and count < 3:
        top = v.max()
        if top <= 0:
            break
        stop = False
        for i in np.flatnonzero(v == top):
            kept[i], v[i] = top, 0
            count += 1
            if i >= EMOTION_COUNT:  # unknown or not a face ties with the top
                stop = True
                if kept.sum() > top:  # an emotion came before it: drop the non-emotion
                    kept[i] = 0
                    count -= 1
                break
        if stop:
            break
    if kept.sum() <= 0.5 * total or count > 3 or kept.argmax() >= EMOTION_COUNT:
        return None
    return kept


def soft_targets(votes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets (M, 8) summing to 1, index (M,) of the faces kept) for a label mode.

    majority: one-hot of the majority class; probability and crossentropy: the top classes'
    share of the votes (what the loss does with it differs); multi-target: every class with
    at least 30% of the votes, by its share (the loss then takes the best of them)."""
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode}")
    if mode == "majority":
        labels = majority_labels(votes)
        index = np.flatnonzero(labels >= 0)
        return np.eye(EMOTION_COUNT)[labels[index]], index
    v = without_single_votes(votes)
    rows, index = [], []
    for i, row in enumerate(v):
        total = row.sum()
        if total <= 0:
            continue
        if mode == "multi-target":
            kept = np.where(row >= 0.3 * total, row, 0)
            if kept.sum() <= 0.5 * total or kept.argmax() >= EMOTION_COUNT:
                continue
            kept = kept[:EMOTION_COUNT]
        else:
            kept = _distribution_row(row)
            if kept is None:
                continue
            kept = kept[:EMOTION_COUNT]
        rows.append(kept / kept.sum())
        index.append(i)
    targets = np.array(rows).reshape(-1, EMOTION_COUNT)
    return targets, np.array(index, dtype=np.int64)
