"""Faces/s of the shipped models through Predictor.probabilities (batch 64, 2 threads, ONNX
Runtime) with the sessions' idle threads spinning between runs (ONNX Runtime's default) and
without (what ferlab.runtime now sets). Run on an idle CPU:

    .venv/bin/python benchmarks/onnx_spinning.py

Recorded in benchmarks/results/onnx_spinning.md.
"""

import numpy as np
import torch

from ferlab.inference import load_model
from ferlab.runtime import session
from timing import items_per_second

FACES = np.random.default_rng(0).integers(0, 255, (64, 48, 48), dtype=np.uint8)


def rate(predictor) -> int:
    return round(items_per_second(lambda: predictor.probabilities(FACES), len(FACES), warmup=3))


if __name__ == "__main__":
    torch.set_num_threads(2)
    for ref in ("fast", "default"):
        predictor = load_model(ref, runtime="onnx")
        for spinning in (True, False):
            predictor.runner.session = session(predictor.runner.graph, spinning)
            print(f"{ref}: spinning {'on ' if spinning else 'off'} {rate(predictor):,} faces/s")
