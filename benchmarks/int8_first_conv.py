"""int8 with and without the first conv (the one on the 1-channel face) quantized, for the
shipped models: top-1 agreement with fp32 and accuracy on their validation faces (the
calibration faces, never a test split), and faces/s at batch 64 the way `Predictor` runs an
ONNX model (equalization, /255, the session, softmax in numpy), 2 threads, 5 interleaved rounds,
medians. The evidence behind ferlab.export.export_onnx_int8 keeping that conv in fp32.

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
from ferlab.inference import load_model
from ferlab.runtime import ONNX_INPUT, ONNX_OUTPUT, session
from timing import items_per_second

RESULTS = Path(__file__).parent / "results"
ROUNDS = 5


def predictor_call(s, faces: np.ndarray):
    def call():
        x = equalize_hist(faces)[:, None].astype(np.float32) / np.float32(255)
        logits = s.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return call


def measure(ref: str, data: str) -> dict:
    predictor = load_model(ref, runtime="torch")
    val = select_split(predictor, data, "val")
    x = predictor.tensor(val.images).contiguous().numpy()
    with tempfile.TemporaryDirectory() as tmp:  # the candidates `ferlab export --int8` weighs
        sessions = {k: session(p) for k, p in int8_graphs(predictor, val.images, Path(tmp)).items()}
    answers = {k: s.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0].argmax(1) for k, s in sessions.items()}
    rates = {k: [] for k in sessions}
    for _ in range(ROUNDS):
        for k, s in sessions.items():
            rates[k].append(items_per_second(predictor_call(s, val.images[:64]), 64))
    return {
        k: {
            "val_accuracy": float((answers[k] == val.labels).mean()),
            "agreement_with_fp32": float((answers[k] == answers["fp32"]).mean()),
            "faces_s_64": float(np.median(rates[k])),
            "faces_s_64_rounds": [round(r) for r in rates[k]],
        }
        for k in sessions
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
