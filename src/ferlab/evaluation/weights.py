"""Ensemble weights chosen on validation: the weighting of members' probabilities that
classifies the validation faces best, from a small grid (each member weighing 0-3, at least
two weighing), as Pramerdorfer & Kampel weigh their members. Validation only: a test split
never chooses."""

import itertools
from dataclasses import dataclass

import numpy as np

from ferlab.errors import FerlabError

LEVELS = (0, 1, 2, 3)


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

    seen, best = set(), None
    for weights in itertools.product(levels, repeat=len(probabilities)):
        if sum(w > 0 for w in weights) < 2:
            continue
        g = np.gcd.reduce([w for w in weights if w])
        key = tuple(w // g for w in weights)
        if key in seen:  # 2,2 weighs as 1,1
            continue
        seen.add(key)
        accuracy, log_loss = scores(key)
        rank = (-accuracy, log_loss, max(key) - min(key))
        if best is None or rank < best[0]:
            best = (rank, key, accuracy, log_loss)
    _, key, accuracy, log_loss = best
    equal, _ = scores([1] * len(probabilities))
    return WeightChoice(tuple(float(w) for w in key), accuracy, log_loss, equal, len(seen))
