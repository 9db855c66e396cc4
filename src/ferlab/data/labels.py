"""Emotion names, split names and the formats data converts to: the one source of truth for
each (plain names, readable without NumPy)."""

# What `ferlab data convert` writes (ferlab.data.writers).
FORMATS = ("folders", "fer2013-csv", "ntu-csv", "ferplus")


# Canonical FER2013 label ids are the positions in this tuple.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
UNLABELED = -1

# FER+ (Barsoum et al. 2016): 10 raters' votes per face over these 8 emotions, then "unknown" and
# "not a face", in label.csv's column order. Its model classes are the 8 emotions, named as
# FER2013's are: every model answers in one vocabulary.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt",
)  # fmt: skip
FERPLUS_VOTES: tuple[str, ...] = (*FERPLUS_CLASSES, "unknown", "NF")
# FER+'s own names for three of them: fer2013new.csv's header says them, and so do the cards
# of models trained before the names were made one.
FERPLUS_NAMES = {"happiness": "happy", "sadness": "sad", "anger": "angry"}
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = tuple(
    {v: k for k, v in FERPLUS_NAMES.items()}.get(c, c) for c in FERPLUS_VOTES
)
# FER+ folders and the FER2013 splits they hold.
FERPLUS_SPLITS = {
    "FER2013Train": "Training",
    "FER2013Valid": "PublicTest",
    "FER2013Test": "PrivateTest",
}
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


def canonical_emotion(name: str) -> str:
    """ferlab's name for an emotion (FER+'s `happiness` is `happy`)."""
    return FERPLUS_NAMES.get(name, name)


def class_mapping(data_classes, model_classes) -> dict[str, str]:
    """Each data class -> the model class of the same emotion (FER+'s old names taken as
    ferlab's); classes without one (FER+'s contempt for a FER2013 model) are absent."""
    model = {canonical_emotion(c): c for c in model_classes}
    return {c: model[canonical_emotion(c)] for c in data_classes if canonical_emotion(c) in model}


def model_label_ids(labels, data_classes, model_classes):
    """Label ids over `data_classes` -> ids over `model_classes` by `class_mapping`; -1 for
    a face without a label or of a class the model lacks (FER+'s contempt for a FER2013
    model); a numpy array."""
    import numpy as np  # here, so that the names above load without NumPy (`ferlab --help`)

    if tuple(data_classes) == tuple(model_classes):
        return np.asarray(labels)
    mapping, model_classes = class_mapping(data_classes, model_classes), list(model_classes)
    to_model = [model_classes.index(mapping[c]) if c in mapping else -1 for c in data_classes]
    return np.array([*to_model, -1])[labels]  # a label of -1 picks the trailing -1
