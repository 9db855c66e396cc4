"""`Recognizer.analyze_many` (the faces of many photos through the model in batches) against
a loop of `analyze` (one photo, its faces, the model, again), on photos of the photo set:

    .venv/bin/python benchmarks/analyze_many.py [PHOTOS]   (default: ../shared/data/photos-tw.zip)

Writes benchmarks/results/analyze_many.md and .json. Run it with nothing else on the CPU.
"""

import io
import sys
import zipfile

import numpy as np
from PIL import Image

import ferlab
from ferlab.api import gray_image
from ferlab.runs import cpu_model
from timing import record, seconds_each

PHOTOS = 256
REPEATS = 5


def photos(source: str) -> list[np.ndarray]:
    """The first PHOTOS photos, decoded to RGB arrays (decoding is not what is compared)."""
    with zipfile.ZipFile(source) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith((".jpg", ".png")))
        return [
            np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB")) for n in names[:PHOTOS]
        ]


def best_seconds(fn) -> float:
    return min(seconds_each(fn, REPEATS))


def main(source: str = "../shared/data/photos-tw.zip") -> None:
    images = photos(source)
    model = cpu_model()
    result = {"cpu": model, "photos": len(images), "runs": {}}
    for ref in ("default", "fast"):
        for tta in (False, True):
            r = ferlab.Recognizer(ref, tta=tta, runtime="onnx")
            r.analyze_many(images[:4])  # warm: sessions, graphs
            loop = best_seconds(lambda r=r: [r.analyze(i) for i in images])
            many = best_seconds(lambda r=r: r.analyze_many(images, batch_size=64))
            detect_only = best_seconds(lambda r=r: [r.detect(gray_image(i)) for i in images])
            key = f"{ref}{', TTA' if tta else ''}"
            result["runs"][key] = {
                "loop_photos_per_s": round(len(images) / loop, 1),
                "many_photos_per_s": round(len(images) / many, 1),
                "speedup": round(loop / many, 2),
                "detection_share_of_many": round(detect_only / many, 2),
            }
            print(key, result["runs"][key], flush=True)
    lines = [
        "# analyze_many against a loop of analyze",
        "",
        f"`python benchmarks/analyze_many.py {source}` on {model} (2 cores, nothing else "
        f"running): the first {len(images)} photos of the set, decoded beforehand, YuNet on "
        "each, the model in ONNX Runtime; best of 5.",
        "",
        "| model | loop of analyze (photos/s) | analyze_many, batch 64 (photos/s) | speed-up | "
        "detection's share of analyze_many |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, r in result["runs"].items():
        lines.append(
            f"| {key} | {r['loop_photos_per_s']} | {r['many_photos_per_s']} | "
            f"{r['speedup']}x | {r['detection_share_of_many']:.0%} |"
        )
    record("analyze_many", result, lines)


if __name__ == "__main__":
    main(*sys.argv[1:])
