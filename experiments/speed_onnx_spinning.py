"""Faces/s of the shipped models through Predictor.probabilities (batch 64, 2 threads, ONNX
Runtime) with the sessions' idle threads spinning between runs (ONNX Runtime's default) and
without (what ferlab.runtime sets). A closed investigation; run on an idle CPU:

    .venv/bin/python experiments/speed_onnx_spinning.py

Recorded in results/speed/onnx_spinning.md.
"""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ferlab.inference import load_model
from ferlab.runtime import onnx_graph

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from timing import items_per_second  # noqa: E402 (the benchmarks' one timing helper)

FACES = np.random.default_rng(0).integers(0, 255, (64, 48, 48), dtype=np.uint8)


def spinning_session(graph: bytes, spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def rate(predictor) -> int:
    return round(items_per_second(lambda: predictor.probabilities(FACES), len(FACES), warmup=3))


if __name__ == "__main__":
    torch.set_num_threads(2)
    for ref in ("fast", "default"):
        predictor = load_model(ref, runtime="onnx")
        graph = onnx_graph(load_model(ref, runtime="torch").model).SerializeToString()
        for spinning in (True, False):
            predictor.backend.session = spinning_session(graph, spinning)
            print(f"{ref}: spinning {'on ' if spinning else 'off'} {rate(predictor):,} faces/s")
