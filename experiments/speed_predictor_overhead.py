"""Where `Predictor.probabilities` lost time against the bare ONNX Runtime session: faces/s
at batch 64, 2 threads, for the shipped models, each path a step further from the bare
session to the full call. A closed investigation; run on an idle CPU:

    .venv/bin/python experiments/speed_predictor_overhead.py [SUFFIX]

Paths (each timed 3 s, interleaved over 3 rounds, medians):
- session: `session.run` on a float32 batch made once (the ceiling);
- numpy: equalize + `ferlab.inference.probabilities` on the ONNX backend (/255, session.run
  and softmax in numpy, no torch op at all);
- torch tensor: equalize + a torch batch + session.run + softmax in torch, i.e. what
  `Predictor.probabilities` once did step for step;
- predictor: `Predictor.probabilities` itself.
Writes results/speed/predictor_overhead[SUFFIX].json; predictor_overhead.md tells them apart.
"""

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from ferlab.data.preprocess import equalize_hist
from ferlab.inference import load_model, probabilities
from ferlab.models import face_batch
from ferlab.runtime import ONNX_INPUT, ONNX_OUTPUT

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from timing import items_per_second  # noqa: E402 (the benchmarks' one timing helper)

THREADS, BATCH, ROUNDS = 2, 64, 3
RESULTS = Path(__file__).parents[1] / "results" / "speed"
FACES = np.random.default_rng(0).integers(0, 255, (BATCH, 48, 48), dtype=np.uint8)


def paths(predictor) -> dict:
    run = predictor.backend.session.run
    ready = (FACES[:, None] / np.float32(255)).astype(np.float32)

    def session():
        run([ONNX_OUTPUT], {ONNX_INPUT: ready})

    def numpy_path():
        probabilities(predictor.backend, equalize_hist(FACES))

    def torch_tensor():
        x = torch.from_numpy(face_batch(equalize_hist(FACES))).numpy()
        torch.softmax(torch.from_numpy(run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]), 1).numpy()

    def full():
        predictor.probabilities(FACES)

    return {"session": session, "numpy": numpy_path, "torch tensor": torch_tensor,
            "predictor": full}  # fmt: skip


def main() -> None:
    torch.set_num_threads(THREADS)
    models = {ref: paths(load_model(ref, runtime="onnx")) for ref in ("fast", "default")}
    rounds = {ref: {name: [] for name in fns} for ref, fns in models.items()}
    for r in range(ROUNDS):
        for ref, fns in models.items():
            for name, fn in fns.items():
                rounds[ref][name].append(items_per_second(fn, BATCH, warmup=3))
        print(f"round {r + 1}/{ROUNDS}", flush=True)
    medians = {
        ref: {k: round(float(np.median(v))) for k, v in d.items()} for ref, d in rounds.items()
    }
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ}
    out = {
        "command": "python experiments/speed_predictor_overhead.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "env": env,
        "threads": THREADS,
        "batch": BATCH,
        "faces_per_s": medians,
    }
    name = "predictor_overhead" + (sys.argv[1] if len(sys.argv) > 1 else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
