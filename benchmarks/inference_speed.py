"""Inference-side speeds of a trained run: batched prediction (faces/s, with and without TTA)
and gradient-ascent filter images (64 filters x 200 steps in one batch).

Usage: python benchmarks/inference_speed.py RUN [DATA]   (nothing else using the CPU)
Writes benchmarks/results/inference_speed.json.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

from ferlab.data import load
from ferlab.explain import filter_images
from ferlab.inference import load_model, probabilities, probabilities_tta


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    run = Path(sys.argv[1])
    data = (
        sys.argv[2]
        if len(sys.argv) > 2
        else os.environ.get("FERLAB_DATA", "../shared/data/fer2013.zip")
    )
    loaded = load_model(run)
    faces, _ = load(data, preprocess=loaded.preprocess)
    test = faces.split("PublicTest").images
    probabilities(loaded.model, test[:512])  # warm-up
    plain = min(timed(lambda: probabilities(loaded.model, test)) for _ in range(2))
    tta = timed(lambda: probabilities_tta(loaded.model, test))
    layer = "features.block2.act2"
    ascent = timed(lambda: filter_images(loaded.model, layer, list(range(64)), steps=200))
    result = {
        "command": f"python benchmarks/inference_speed.py {run} {data}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "model": loaded.card.model,
        "predict_faces_per_s": round(len(test) / plain),
        "predict_tta_faces_per_s": round(len(test) / tta),
        "faces": len(test),
        "filter_ascent": {
            "layer": layer,
            "filters": 64,
            "steps": 200,
            "seconds": round(ascent, 1),
            "target_seconds": 120,
        },
    }
    out = Path(__file__).parent / "results" / "inference_speed.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
