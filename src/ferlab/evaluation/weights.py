"""Ensemble weights chosen on validation: the weighting of members' probabilities that
classifies the validation faces best, from a small grid (each member weighing 0-3, at least
two weighing), as Pramerdorfer & Kampel weigh their members; past MAX_GRID_MEMBERS members
(4^n weightings: 10 members kept a million in memory) by coordinate ascent over the same
levels from equal weights. Validation only: a test split never chooses."""

import itertools
from dataclasses import dataclass

import numpy as np

from ferlab.errors import FerlabError

LEVELS = (0, 1, 2, 3)
MAX_GRID_MEMBERS = 6  # 4^6 = 4,096 weightings: seconds


@dataclass(frozen=True)
class WeightChoice:
    weights: tuple[float, ...]  # one per member, as chosen (not normalized)
    accuracy: float  # of the weighted mean on the faces it was chosen on
    log_loss: float
    equal_accuracy: float  # of the plain mean, for comparison
    candidates: int


def weighted_mean(probabilities: list[np.ndarray], weights) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return np.tensordot(w / w.sum(), np.stack(probabilities), axes=1)


def chosen_weights(
    probabilities: list[np.ndarray], labels: np.ndarray, levels=LEVELS
) -> WeightChoice:
    """The grid weighting of `probabilities` (one (N, classes) array per member) with the best
    accuracy on `labels`; ties go to the lower log-loss, then to the more equal weighting."""
    if len(probabilities) < 2:
        raise FerlabError("an ensemble needs at least two members")
    labels = np.asarray(labels)
    if any(p.shape != (len(labels), probabilities[0].shape[1]) for p in probabilities):
        raise FerlabError("every member needs probabilities for the same faces")

    def scores(weights):
        mean = weighted_mean(probabilities, weights)
        accuracy = float((mean.argmax(1) == labels).mean())
        log_loss = float(-np.log(np.clip(mean[np.arange(len(labels)), labels], 1e-12, 1)).mean())
        return accuracy, log_loss

    def rank(key):
        accuracy, log_loss = scores(key)
        return (-accuracy, log_loss, max(key) - min(key)), accuracy, log_loss

    n = len(probabilities)
    candidates = _grid(n, levels) if n <= MAX_GRID_MEMBERS else None
    if candidates is not None:
        ranked = [(rank(key), key) for key in candidates]
        (best, accuracy, log_loss), key = min(ranked, key=lambda r: r[0][0])
        tried = len(candidates)
    else:
        key, tried = _coordinate_ascent(n, levels, lambda k: rank(k)[0])
        _, accuracy, log_loss = rank(key)
    equal, _ = scores([1] * n)
    return WeightChoice(tuple(float(w) for w in key), accuracy, log_loss, equal, tried)


def _reduced(weights) -> tuple[int, ...] | None:
    """The weighting in lowest terms (2,2 weighs as 1,1); None when fewer than two weigh."""
    if sum(w > 0 for w in weights) < 2:
        return None
    g = np.gcd.reduce([w for w in weights if w])
    return tuple(int(w // g) for w in weights)


def _grid(n: int, levels) -> list[tuple[int, ...]]:
    keys = {_reduced(w) for w in itertools.product(levels, repeat=n)}
    return sorted(k for k in keys if k is not None)


def _coordinate_ascent(n: int, levels, rank, rounds: int = 10) -> tuple[tuple[int, ...], int]:
    """From equal weights, each member's level in turn set to its best, until a round changes
    nothing: n x levels x rounds weightings at most, whatever n."""
    key, best, tried = (1,) * n, rank((1,) * n), 1
    for _ in range(rounds):
        changed = False
        for i in range(n):
            for level in levels:
                trial = _reduced(key[:i] + (level,) + key[i + 1 :])
                if trial is None or trial == key:
                    continue
                tried += 1
                r = rank(trial)
                if r < best:
                    key, best, changed = trial, r, True
        if not changed:
            break
    return key, tried


def validation_choice(members: list, data, tta: bool) -> WeightChoice:
    """The weights of `members` (loaded Predictors) chosen on their shared validation split."""
    from ferlab.evaluation.evaluate import select_split

    faces = select_split(members[0], data, "val")
    probs = [p.probabilities(faces, tta=tta) for p in members]
    return chosen_weights(probs, faces.labels)
