"""Inference speed of one model three ways: eager PyTorch, torch.compile, ONNX Runtime, at
batch 1 and batch 256 (images/s), and the ONNX/PyTorch output agreement.

Usage: python benchmarks/export_speed.py [MODEL_REF]   (default: default; nothing else running)
Writes benchmarks/results/export_speed.json.
"""

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ferlab.export import ONNX_INPUT, export_onnx
from ferlab.inference import load_model
from timing import items_per_second


def main() -> None:
    ref = sys.argv[1] if len(sys.argv) > 1 else "default"
    loaded = load_model(ref, runtime="torch")
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(loaded, Path(tmp) / "m.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        size_mb = path.stat().st_size / 1e6
    # Eager as ferlab predicts (channels_last: +52% here); compile from the same module.
    eager = loaded.model.eval().to(memory_format=torch.channels_last)
    compiled = torch.compile(eager)
    results = {}
    for batch in (1, 256):
        x = torch.rand(batch, 1, 48, 48)
        xc = x.contiguous(memory_format=torch.channels_last)
        xn = x.numpy()
        with torch.inference_mode():
            ref_out = eager(xc).numpy()
            results[f"batch_{batch}"] = {
                "eager": round(items_per_second(lambda xc=xc: eager(xc), batch, 8.0)),
                "torch_compile": round(items_per_second(lambda xc=xc: compiled(xc), batch, 8.0)),
                "onnxruntime": round(
                    items_per_second(lambda xn=xn: session.run(None, {ONNX_INPUT: xn}), batch, 8.0)
                ),
            }
        diff = np.abs(session.run(None, {ONNX_INPUT: xn})[0] - ref_out).max()
        results[f"batch_{batch}"]["onnx_max_abs_diff"] = float(diff)
    result = {
        "command": f"python benchmarks/export_speed.py {ref}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}",
        "model": loaded.card.model,
        "onnx_mb": round(size_mb, 2),
        "images_per_s": results,
    }
    out = Path(__file__).parent / "results" / "export_speed.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
