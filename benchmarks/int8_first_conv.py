"""int8 with and without the first conv (the one on the 1-channel face) quantized, for the
shipped models: top-1 agreement with fp32 and accuracy on their validation faces (the
calibration faces, never a test split), and faces/s at batch 64 the way `Predictor` runs an
ONNX model (equalization, then `ferlab.inference.probabilities`: /255, the session, softmax in
numpy), 2 threads, 5 interleaved rounds, medians. The evidence behind the choice
ferlab.export.export_onnx_int8 makes between these graphs.

    .venv/bin/python benchmarks/int8_first_conv.py [DATA]   (idle CPU; DATA: the shared zip)

Writes benchmarks/results/int8_first_conv.md and .json.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from ferlab.data.preprocess import equalize_hist
from ferlab.evaluation import select_split
from ferlab.export import int8_graphs
from ferlab.inference import load_model, probabilities
from ferlab.runtime import OnnxBackend
from timing import items_per_second

RESULTS = Path(__file__).parent / "results"
ROUNDS = 5


def measure(ref: str, data: str) -> dict:
    predictor = load_model(ref, runtime="torch")
    val = select_split(predictor, data, "val")
    with tempfile.TemporaryDirectory() as tmp:  # the candidates `ferlab export --int8` weighs
        graphs = int8_graphs(predictor, predictor.input_batch(val).contiguous().numpy(), Path(tmp))
        runners = {k: OnnxBackend(p) for k, p in graphs.items()}
    answers = {k: probabilities(r, val.images).argmax(1) for k, r in runners.items()}
    rates = {k: [] for k in runners}
    faces = val.images[:64]
    for _ in range(ROUNDS):
        for k, r in runners.items():  # as Predictor runs an ONNX model: equalize, then numpy
            rate = items_per_second(lambda r=r: probabilities(r, equalize_hist(faces)), 64)
            rates[k].append(rate)
    return {
        k: {
            "val_accuracy": float((answers[k] == val.labels).mean()),
            "agreement_with_fp32": float((answers[k] == answers["fp32"]).mean()),
            "faces_s_64": float(np.median(rates[k])),
            "faces_s_64_rounds": [round(r) for r in rates[k]],
        }
        for k in runners
    }


def main(data: str = "../shared/data/fer2013.zip") -> None:
    torch.set_num_threads(2)
    results = {ref: measure(ref, data) for ref in ("fast", "default")}
    out = {"command": "python benchmarks/int8_first_conv.py", "data": data, "rounds": ROUNDS,
           "results": results}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_first_conv.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# int8: the first conv quantized or kept in fp32",
        "",
        f"`{out['command']}` on the idle CPU: validation faces of each shipped model (also the "
        f"calibration faces); faces/s at batch 64 as `Predictor` runs ONNX, 2 threads, {ROUNDS} "
        "interleaved rounds, medians.",
        "",
        "| model | graph | validation accuracy | change | agreement with fp32 | faces/s, b64 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for ref, rows in results.items():
        base = rows["fp32"]["val_accuracy"]
        for k, r in rows.items():
            change = f"{100 * (r['val_accuracy'] - base):+.2f}" if k != "fp32" else ""
            lines.append(
                f"| {ref} | {k} | {r['val_accuracy']:.2%} | {change} | "
                f"{r['agreement_with_fp32']:.2%} | {r['faces_s_64']:,.0f} |"
            )
    (RESULTS / "int8_first_conv.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:2])
