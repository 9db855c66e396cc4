"""Small faces in large photos: faces of the photo set (photos-tw) pasted at 24 to 150 px wide
on 4000x3000 canvases, found by YuNet searching the usual 640-px copy, with `min_face` (the
copy kept large enough for faces of that width), and at full resolution.

    .venv/bin/python benchmarks/small_faces.py [PHOTOS]   (default: ../shared/data/photos-tw.zip)

Writes benchmarks/results/small_faces.md and .json. Run it with nothing else on the CPU.
"""

import io
import sys
import zipfile

import cv2
import numpy as np
from PIL import Image

from ferlab.data.images import gray_array
from ferlab.photos.detect import Box, YuNetParams, create_detector, yunet
from ferlab.photos.photo_set import iou
from ferlab.runs import cpu_model
from timing import record, seconds_each

SIZES = (24, 32, 48, 64, 96, 150)  # face widths on the canvas, px
CANVAS = (3000, 4000)  # height, width: a 12-megapixel photo
CANVASES = 4
REPEATS = 3


def photo_faces(source: str, n: int) -> list[np.ndarray]:
    """Head-and-shoulders patches (2.4x the face's width, face centred; past the photo's
    edge its border pixels repeated) of the first `n` photos in which YuNet finds a face."""
    detect = yunet(YuNetParams(max_side=100_000))
    patches = []
    with zipfile.ZipFile(source) as z:
        for name in sorted(n for n in z.namelist() if n.lower().endswith((".jpg", ".png"))):
            gray = gray_array(Image.open(io.BytesIO(z.read(name))))
            found = detect(gray)
            if not found:
                continue
            face = max(found, key=lambda b: b.w * b.h)
            side = int(2.4 * face.w)
            cx, cy = face.x + face.w // 2, face.y + face.h // 2
            # close-ups: the photo's edges continue where the patch runs past them
            padded = cv2.copyMakeBorder(gray, side, side, side, side, cv2.BORDER_REPLICATE)
            top, left = cy - side // 2 + side, cx - side // 2 + side
            patches.append(padded[top : top + side, left : left + side])
            if len(patches) == n:
                break
    return patches


def canvases(patches: list[np.ndarray]) -> list[tuple[np.ndarray, list[Box]]]:
    """Smooth-noise canvases, each with one face of every width in SIZES, at seeded places
    in a 3x2 grid of cells."""
    rng = np.random.default_rng(0)
    out, k = [], 0
    h, w = CANVAS
    for _ in range(CANVASES):
        noise = rng.normal(128, 40, (h // 50, w // 50)).astype(np.float32)
        canvas = np.clip(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255)
        canvas = canvas.astype(np.uint8)
        truth = []
        for i, size in enumerate(SIZES):
            patch = patches[k % len(patches)]
            k += 1
            side = round(size * 2.4)
            small = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
            cell_x, cell_y = (i % 3) * (w // 3), (i // 3) * (h // 2)
            x = cell_x + int(rng.integers(50, w // 3 - side - 50))
            y = cell_y + int(rng.integers(50, h // 2 - side - 50))
            canvas[y : y + side, x : x + side] = small
            margin = round((side - size) / 2)
            truth.append(Box(x + margin, y + margin, size, size))
        out.append((canvas, truth))
    return out


def found_per_size(found: list[Box], truth: list[Box]) -> list[bool]:
    return [any(iou(f, t) >= 0.3 for f in found) for t in truth]


def main(source: str = "../shared/data/photos-tw.zip") -> None:
    made = canvases(photo_faces(source, 24))
    searches = {
        "yunet, the 640-px copy (ferlab before 2026-12-05)": yunet(
            YuNetParams(search_min_face=None)
        ),
        "yunet, the default (faces from 48 px: a 1667-px copy here)": create_detector("yunet"),
        "yunet, min_face=32 (a 2500-px copy)": create_detector("yunet", min_face=32),
        "yunet, min_face=24 (a 3333-px copy)": create_detector("yunet", min_face=24),
        "yunet, full resolution": yunet(YuNetParams(max_side=100_000)),
    }
    model = cpu_model()
    result = {"cpu": model, "canvas": f"{CANVAS[1]}x{CANVAS[0]}", "sizes": SIZES, "searches": {}}
    for name, detect in searches.items():
        hits = np.zeros(len(SIZES), int)
        false, seconds = 0, []
        for canvas, truth in made:
            found = detect(canvas)
            per_size = found_per_size(found, truth)
            hits += per_size
            false += sum(not any(iou(f, t) >= 0.3 for t in truth) for f in found)
            times = seconds_each(lambda d=detect, c=canvas: d(c), REPEATS)
            seconds.append(float(np.median(times)))
        result["searches"][name] = {
            "found_by_size": dict(zip(map(str, SIZES), hits.tolist(), strict=True)),
            "found": int(hits.sum()),
            "faces": len(SIZES) * len(made),
            "false": int(false),
            "seconds_per_photo": round(float(np.median(seconds)), 3),
        }
        print(name, result["searches"][name], flush=True)
    lines = [
        "# Small faces in large photos",
        "",
        f"`python benchmarks/small_faces.py {source}` on {model} (2 cores, nothing else "
        f"running): {len(made)} canvases of {result['canvas']} (smooth noise), each with one "
        f"face of the photo set at each width {', '.join(map(str, SIZES))} px (a "
        "head-and-shoulders patch 2.4x the face's width); a face is found when a box overlaps "
        "it by IoU >= 0.3. Time: median of 3 detections of a canvas, median over canvases.",
        "",
        "| search | " + " | ".join(f"{s} px" for s in SIZES) + " | found | false | s / photo |",
        "| --- | " + " | ".join("---:" for _ in SIZES) + " | ---: | ---: | ---: |",
    ]
    for name, r in result["searches"].items():
        cells = " | ".join(f"{n}/{len(made)}" for n in r["found_by_size"].values())
        lines.append(
            f"| {name} | {cells} | {r['found']}/{r['faces']} | {r['false']} | "
            f"{r['seconds_per_photo']} |"
        )
    record("small_faces", result, lines)


if __name__ == "__main__":
    main(*sys.argv[1:])
