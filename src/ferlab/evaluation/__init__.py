from ferlab.evaluation.compare import compare
from ferlab.evaluation.evaluate import Evaluation, evaluate, select_split, write_evaluation
from ferlab.evaluation.metrics import (
    classification_report,
    confusion_counts,
    most_confused,
    normalize_rows,
)
from ferlab.evaluation.predict import Predictions, predict, write_predictions
from ferlab.evaluation.weights import WeightChoice, chosen_weights

__all__ = [
    "Evaluation",
    "Predictions",
    "WeightChoice",
    "chosen_weights",
    "classification_report",
    "compare",
    "confusion_counts",
    "evaluate",
    "most_confused",
    "normalize_rows",
    "predict",
    "select_split",
    "write_evaluation",
    "write_predictions",
]
