"""Photo accuracy of models and of their averages: each MODEL alone and the mean of the
probabilities of every pair and of all, on labelled photos (`<emotion>/<photo>`, e.g.
photos-tw). One YuNet detection and aligned crop per photo (its largest face, as `ferlab
evaluate MODEL --data PHOTOS --detector yunet` takes it), shared by every model; a photo
without a face counts as wrong. A model with other classes than the photos' (FER+'s 8) answers
through class_mapping, among the photos' classes only (its contempt left out), so the
models can be averaged; `ferlab evaluate` instead counts a contempt answer as wrong.

    .venv/bin/python experiments/photo_ensemble.py PHOTOS OUT.md MODEL MODEL [MODEL ...]
"""

import itertools
import sys
from pathlib import Path

import numpy as np

from ferlab.data.images import gray_array
from ferlab.data.labels import EMOTIONS, class_mapping
from ferlab.inference import load_model
from ferlab.photos.analyze import read_photo
from ferlab.photos.detect import aligned_face, create_detector
from ferlab.photos.photo_eval import labelled_photos


def photo_crops(photos: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crops of the photos with a face, their indices, every photo's label)."""
    detect = create_detector("yunet")
    crops, found, labels = [], [], []
    for i, (name, label, read) in enumerate(labelled_photos(photos)):
        gray = gray_array(read_photo(read(), name))
        boxes = detect(gray)
        if boxes:
            crops.append(aligned_face(gray, max(boxes, key=lambda b: b.w * b.h)))
            found.append(i)
        labels.append(label)
    return np.stack(crops), np.array(found), np.array(labels)


def photo_class_probabilities(model_ref: str, crops: np.ndarray) -> np.ndarray:
    """(N, 7) probabilities over the photos' classes (FER2013's names), renormalized where
    the model has classes the photos lack."""
    predictor = load_model(model_ref)
    probs = predictor.probabilities(crops)
    classes = list(predictor.classes)
    mapping = class_mapping(EMOTIONS, classes)
    columns = probs[:, [classes.index(mapping[e]) for e in EMOTIONS]]
    return columns / columns.sum(1, keepdims=True)


def main(photos: str, out: Path, refs: list[str]) -> None:
    crops, found, labels = photo_crops(Path(photos))
    probs = {ref: photo_class_probabilities(ref, crops) for ref in refs}
    rows = []
    for size in range(1, len(refs) + 1):
        for members in itertools.combinations(refs, size):
            mean = np.mean([probs[m] for m in members], axis=0)
            pred = np.full(len(labels), -1)
            pred[found] = mean.argmax(1)
            recall = [float((pred[labels == c] == c).mean()) for c in range(len(EMOTIONS))]
            accuracy = float((pred == labels).mean())
            cells = " | ".join(f"{r:.1%}" for r in recall)
            rows.append(f"| {' + '.join(members)} | {accuracy:.1%} | {cells} |")
    header = " | ".join(EMOTIONS)
    text = [
        f"# Models and their averages on {Path(photos).name}",
        "",
        f"`python experiments/photo_ensemble.py {photos} {out} {' '.join(refs)}`",
        "",
        f"{len(labels):,} photos, a face found in {len(found):,}. Each row: the mean of the "
        "members' probabilities over the photos' 7 classes (a FER+ model's contempt left out "
        "and the rest renormalized); per-class figures are recall.",
        "",
        f"| models | accuracy | {header} |",
        "| --- | ---: | " + " | ".join("---:" for _ in EMOTIONS) + " |",
        *rows,
        "",
    ]
    out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
