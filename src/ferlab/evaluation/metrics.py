"""Classification metrics as plain arrays and dicts, in numpy: the core install (ONNX Runtime,
no torch) evaluates too. Training's metrics come from torchmetrics; these agree with it."""

import numpy as np


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int counts, rows = true class, columns = predicted class."""
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def normalize_rows(counts: np.ndarray) -> np.ndarray:
    """Each row sums to 1 (a class with no samples stays all zero)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    k = len(labels)
    counts = confusion_counts(y_true, y_pred, k)
    hits = np.diag(counts).astype(float)
    predicted, actual = counts.sum(0), counts.sum(1)
    # A class never predicted (or never present) scores 0 there, not NaN.
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(k), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    support = np.bincount(y_true, minlength=k)
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[support > 0].mean()) if (support > 0).any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
    }


def most_confused(
    normalized: np.ndarray, labels: list[str], threshold: float = 0.1, top: int = 2
) -> list[dict]:
    """For each true emotion, the (up to `top`) emotions it is mistaken for at >= threshold."""
    rows = []
    for i, name in enumerate(labels):
        rates = [(labels[j], float(normalized[i, j])) for j in range(len(labels)) if j != i]
        rates = sorted((r for r in rates if r[1] >= threshold), key=lambda r: -r[1])[:top]
        rows.append(
            {
                "true": name,
                "recall": float(normalized[i, i]),
                "confused_with": [{"emotion": e, "rate": r} for e, r in rates],
            }
        )
    return rows


def most_confused_markdown(rows: list[dict], threshold: float) -> str:
    lines = ["| true emotion | recall | most often mistaken for |", "| --- | ---: | --- |"]
    for row in rows:
        confused = ", ".join(f"{c['emotion']} ({c['rate']:.0%})" for c in row["confused_with"])
        lines.append(
            f"| {row['true']} | {row['recall']:.0%} | "
            f"{confused or f'none notable (all < {threshold:.0%})'} |"
        )
    return "\n".join(lines) + "\n"


def vote_agreement(votes: np.ndarray, predicted: np.ndarray, n_emotions: int) -> dict:
    """How far answers agree with FER+'s raters, beyond the majority label: (N, V) vote
    counts whose first `n_emotions` columns are emotions (then "unknown", "not a face"), and
    (N,) predicted emotion columns. top_voted: the share of faces whose answer got the most
    emotion votes (a tie for the most counts); vote_share: the mean share of a face's emotion
    votes that went to its answer."""
    v = np.asarray(votes, dtype=np.float64)[:, :n_emotions]
    got = v[np.arange(len(v)), predicted]
    total = v.sum(1)
    return {
        "top_voted": round(float((got == v.max(1)).mean()), 4) if len(v) else 0.0,
        "vote_share": round(float((got / np.maximum(total, 1)).mean()), 4) if len(v) else 0.0,
    }
