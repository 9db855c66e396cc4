"""The aligned crop's framing confirmed on labelled photos: photo accuracy of MODEL on PHOTOS
(`<emotion>/<photo>`, e.g. photos-tw) for each margin and raise of `aligned_face` around the
rule chosen on FER2013 faces on a canvas (benchmarks/align_fer_canvas.py). Each photo's
largest YuNet face; a photo without a face counts as wrong.

    .venv/bin/python experiments/photo_framing.py MODEL PHOTOS OUT.md
"""

import sys
from pathlib import Path

import numpy as np

from ferlab.data.images import gray_array
from ferlab.inference import load_model
from ferlab.photos.analyze import read_photo
from ferlab.photos.detect import ALIGN_MARGIN, ALIGN_RAISE, aligned_face, create_detector
from ferlab.photos.photo_eval import labelled_photos

MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15)
RAISES = (0.0, 0.03, 0.08)


def main(model_ref: str, photos: str, out: Path) -> None:
    predictor = load_model(model_ref)
    detect = create_detector("yunet")
    found, labels = [], []
    for name, label, read in labelled_photos(Path(photos)):
        gray = gray_array(read_photo(read(), name))
        boxes = detect(gray)
        found.append((gray, max(boxes, key=lambda b: b.w * b.h)) if boxes else None)
        labels.append(label)
    y = np.array(labels)
    rows = []
    for margin in MARGINS:
        cells = []
        for raise_by in RAISES:
            crops = [aligned_face(g, b, margin, raise_by) for g, b in filter(None, found)]
            probs = predictor.probabilities(np.stack(crops))
            pred = np.full(len(y), -1)
            pred[[i for i, f in enumerate(found) if f]] = probs.argmax(1)
            accuracy = float((pred == y).mean())
            chosen = (margin, raise_by) == (ALIGN_MARGIN, ALIGN_RAISE)
            cells.append(f"**{accuracy:.1%}**" if chosen else f"{accuracy:.1%}")
        rows.append(f"| {margin:+.0%} | " + " | ".join(cells) + " |")
    text = "\n".join(
        [
            f"# Framing of the aligned crop on {Path(photos).name}",
            "",
            f"`python experiments/photo_framing.py {model_ref} {photos} {out}`",
            "",
            f"Photo accuracy of `{model_ref}` ({len(y)} photos, {sum(map(bool, found))} with a "
            "face) by the margin added on each side of the box's longer side (rows) and the "
            "raise of the crop's centre, in box heights (columns). Bold: the rule in use "
            "(chosen on FER2013 faces on a canvas).",
            "",
            "| margin | " + " | ".join(f"raise {r:.0%}" for r in RAISES) + " |",
            "| ---: | " + " | ".join("---:" for _ in RAISES) + " |",
            *rows,
            "",
        ]
    )
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
