"""How the photo path frames a face, measured on FER2013 faces whose true framing is known:
each PublicTest face is enlarged to 160 px, pasted on a gray canvas (upright, and rotated by
+-15 degrees about its centre), found by `yunet`, and cut back to 48x48 by the box
(`crop_face`, as haar's boxes are cut) and aligned on the landmarks (`aligned_face`); the
score is the pixel correlation of each crop with the original face. Needs the data:

    .venv/bin/python benchmarks/align_fer_canvas.py [DATA] [N]   (../shared/data/fer2013.zip, 500)

Writes benchmarks/results/align_fer_canvas.md.
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from ferlab.data import RAW, load
from ferlab.photos.detect import aligned_face, create_detector, crop_face

SIDE, PAD = 160, 160


def on_canvas(face: np.ndarray, degrees: float) -> np.ndarray:
    up = cv2.resize(face, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(up, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=128)
    if degrees:
        c = canvas.shape[0] / 2
        m = cv2.getRotationMatrix2D((c, c), degrees, 1.0)
        canvas = cv2.warpAffine(canvas, m, canvas.shape[::-1], borderValue=128)
    return canvas


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def main(data: str, n: int) -> str:
    faces, _ = load(data, RAW)
    detect = create_detector("yunet")
    rng = np.random.default_rng(0)
    test = faces.split("PublicTest").images
    test = test[rng.choice(len(test), n, replace=False)]
    lines = [
        "# Framing of the photo path on FER2013 faces pasted on a canvas",
        "",
        f"`python benchmarks/align_fer_canvas.py {data} {n}` (the framing was chosen on "
        "Training faces; these are PublicTest's).",
        "",
        f"{n} PublicTest faces (seed 0), 160 px on a gray canvas; correlation of the 48x48 crop "
        "with the original face (median over the faces found):",
        "",
        "| canvas | found | box crop (`crop_face`) | aligned (`aligned_face`) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for degrees in (0, 15, -15):
        box_r, aligned_r = [], []
        for face in test:
            found = detect(on_canvas(face, degrees))
            if not found:
                continue
            b = max(found, key=lambda f: f.w * f.h)
            canvas = on_canvas(face, degrees)
            box_r.append(correlation(crop_face(canvas, b), face))
            aligned_r.append(correlation(aligned_face(canvas, b), face))
        lines.append(
            f"| rotated {degrees:+d} deg | {len(box_r)}/{n} | {np.median(box_r):.3f} | "
            f"{np.median(aligned_r):.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fer2013.zip"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    text = main(data, n)
    out = Path(__file__).parent / "results" / "align_fer_canvas.md"
    out.write_text(text)
    print(text)
