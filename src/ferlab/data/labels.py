"""Emotion names and split names: the one source of truth for both."""

import numpy as np

# Canonical FER2013 label ids are the positions in this tuple.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
UNLABELED = -1

# FER+ (Barsoum et al. 2016): 10 raters' votes per face over these 8 emotions, then "unknown" and
# "not a face", in label.csv's column order. Its model classes are the 8 emotions.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)  # fmt: skip
FERPLUS_VOTES: tuple[str, ...] = (*FERPLUS_CLASSES, "unknown", "NF")
# FER+ folders and the FER2013 splits they hold.
FERPLUS_SPLITS = {
    "FER2013Train": "Training",
    "FER2013Valid": "PublicTest",
    "FER2013Test": "PrivateTest",
}
# The same emotion under its FER2013 and FER+ names; contempt has no FER2013 counterpart.
FER2013_TO_FERPLUS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
    "sad": "sadness", "surprise": "surprise", "neutral": "neutral",
}  # fmt: skip

# Splits in the order they are listed. "Test" is a test folder or test.csv without FER2013's
# own split names; "Unsplit" is a plain <emotion>/ folder.
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest", "Test", "Unsplit")
FILE_PREFIXES = {
    "Training_": "Training",
    "PublicTest_": "PublicTest",
    "PrivateTest_": "PrivateTest",
}
SPLIT_FOLDERS = {
    "train": "Training",
    "training": "Training",
    "test": "Test",
    "publictest": "PublicTest",
    "privatetest": "PrivateTest",
}
SPLIT_FILE_PREFIX = {
    "Training": "Training_",
    "PublicTest": "PublicTest_",
    "PrivateTest": "PrivateTest_",
}


def emotion_id(name: str) -> int | None:
    """Label id of an emotion folder name (case-insensitive, or its digit), else None."""
    key = name.strip().lower()
    if key in EMOTIONS:
        return EMOTIONS.index(key)
    if key.isdigit() and int(key) < NUM_CLASSES:
        return int(key)
    return None


def split_order(name: str) -> int:
    return SPLITS.index(name) if name in SPLITS else len(SPLITS)


def class_mapping(data_classes, model_classes) -> dict[str, str]:
    """Each data class -> the model class of the same emotion (by name, or FER2013's name for
    FER+'s and back); classes without one (FER+'s contempt for a FER2013 model) are absent."""
    same = FER2013_TO_FERPLUS | {v: k for k, v in FER2013_TO_FERPLUS.items()}
    out = {}
    for c in data_classes:
        if c in model_classes:
            out[c] = c
        elif same.get(c) in model_classes:
            out[c] = same[c]
    return out


def model_label_ids(labels: np.ndarray, data_classes, model_classes) -> np.ndarray:
    """Label ids over `data_classes` -> ids over `model_classes` by `class_mapping`; -1 for
    a face without a label or of a class the model lacks (FER+'s contempt for a FER2013
    model)."""
    if tuple(data_classes) == tuple(model_classes):
        return np.asarray(labels)
    mapping, model_classes = class_mapping(data_classes, model_classes), list(model_classes)
    to_model = [model_classes.index(mapping[c]) if c in mapping else -1 for c in data_classes]
    return np.array([*to_model, -1])[labels]  # a label of -1 picks the trailing -1
