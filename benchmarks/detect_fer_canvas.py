"""Detection recall on FER2013's tight face crops pasted on a canvas
(ferlab.photos.photo_set.faces_on_canvas, as tests/test_photos.py builds them): 5 canvases of 8
PublicTest faces at 144 px, drawn with seeds 0-4; `haar` (ferlab 0.3's search) against
`haar-fast` and a few other searches. Dataset images cannot go into the photo set, so this
needs the data:

    .venv/bin/python benchmarks/detect_fer_canvas.py [DATA]   (default: ../shared/data/fer2013.zip)

Writes benchmarks/results/detect_fer_canvas.md.
"""

import sys
from pathlib import Path

import numpy as np

from ferlab.data import RAW, load
from ferlab.photos.detect import HAAR_FAST, Box, HaarParams, haar, yunet
from ferlab.photos.photo_set import faces_on_canvas, matched

SEARCHES = {
    "haar (ferlab 0.3's search)": HaarParams(),
    "haar-fast (alt2, 24 px, step 1.3, 1 neighbour)": HAAR_FAST,
    "alt2, 24 px, step 1.2, 1 neighbour": HaarParams(
        "frontalface_alt2", scale_factor=1.2, min_neighbors=1
    ),  # fmt: skip
    "default, 24 px, step 1.2, 3 neighbours": HaarParams(scale_factor=1.2, min_neighbors=3),
}


def canvases(data: str) -> list[tuple[np.ndarray, tuple[Box, ...]]]:
    faces, _ = load(data, preprocess=RAW)
    test = faces.split("PublicTest")
    out = []
    for seed in range(5):
        picks = np.random.default_rng(seed).choice(len(test), 8, replace=False)
        out.append(faces_on_canvas(test.images[picks]))
    return out


def main(data: str = "../shared/data/fer2013.zip") -> None:
    made = canvases(data)
    lines = [
        "# Detection recall on FER2013 faces pasted on a canvas",
        "",
        f"`python benchmarks/detect_fer_canvas.py` ({data}): 5 canvases of 8 PublicTest faces "
        "at 144 px (40 faces); a face is found when a box overlaps it by IoU >= 0.3.",
        "",
        "| search | found | false |",
        "| --- | ---: | ---: |",
    ]
    detectors = {"yunet (the default)": yunet()}
    detectors |= {name: haar(params) for name, params in SEARCHES.items()}
    for name, detect in detectors.items():
        found = sum(matched(detect(c), boxes) for c, boxes in made)
        false = sum(len(detect(c)) for c, _ in made) - found
        lines.append(f"| {name} | {found}/40 | {false} |")
        print(lines[-1], flush=True)
    out = Path(__file__).parent / "results" / "detect_fer_canvas.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:2])
