"""Prediction speed through the Predictor a user gets from `load_model`: faces/s of the
shipped models on PublicTest faces as read (equalization included), each runtime, with and
without TTA; and gradient-ascent filter images (64 filters x 200 steps in one batch).

Usage: python benchmarks/inference_speed.py [DATA] [--label LABEL]   (nothing else running)
Writes benchmarks/results/inference_speed[-LABEL].json and, from every such record,
benchmarks/results/inference_speed.md (one column per label, so a change is measured
before and after it in the same table).
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

from ferlab.data.cache import read_cached
from ferlab.explain import filter_images
from ferlab.inference import load_model, shipped_models
from ferlab.runtime import onnx_installed
from timing import items_per_second

RESULTS = Path(__file__).parent / "results"
FACES = 1024  # PublicTest faces a timed call predicts (TTA: 10 views of each)


def rates(data: str) -> list[dict]:
    faces = read_cached(data)[0].split("PublicTest").images[:FACES]  # as read: not equalized
    rows = []
    for runtime in ("torch", "onnx") if onnx_installed() else ("torch",):
        for ref in ("default", "fast"):
            if ref not in shipped_models():
                continue
            predictor = load_model(ref, runtime=runtime)
            for tta in (False, True):
                rate = items_per_second(
                    lambda p=predictor, t=tta: p.probabilities(faces, tta=t),
                    len(faces), seconds=4.0 if tta else 2.0, warmup=1,
                )  # fmt: skip
                rows.append({"model": ref, "runtime": runtime, "tta": tta, "faces_s": round(rate)})
                print(rows[-1], flush=True)
    return rows


def ascent_seconds() -> float:
    model = load_model("default", runtime="torch").model
    start = time.perf_counter()
    filter_images(model, "features.block2.act2", list(range(64)), steps=200)
    return round(time.perf_counter() - start, 1)


def table(records: list[dict]) -> str:
    labels = [r["label"] for r in records]
    keys = [(row["model"], row["runtime"], row["tta"]) for row in records[0]["predict"]]
    lines = [
        "# Prediction speed (faces/s through `load_model(...).probabilities`)",
        "",
        f"`python benchmarks/inference_speed.py --label LABEL`, {FACES} PublicTest faces a call,",
        "equalization included, nothing else running. "
        + "; ".join(f"{r['label']}: {r['date']}, {r['machine']}" for r in records),
        "",
        "| model | runtime | TTA | " + " | ".join(labels) + " |",
        "| --- | --- | --- |" + " ---: |" * len(labels),
    ]
    for key in keys:
        cells = []
        for r in records:
            found = [
                x["faces_s"] for x in r["predict"] if (x["model"], x["runtime"], x["tta"]) == key
            ]
            cells.append(f"{found[0]:,}" if found else "")
        lines.append(
            f"| {key[0]} | {key[1]} | {'10 views' if key[2] else 'no'} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "Filter images (64 filters x 200 steps, default, torch): "
        + "; ".join(f"{r['label']} {r['filter_ascent_s']} s" for r in records)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "data", nargs="?", default=os.environ.get("FERLAB_DATA", "../shared/data/fer2013.zip")
    )
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line]
    record = {
        "command": f"python benchmarks/inference_speed.py {args.data} --label {args.label}",
        "label": args.label,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{names[0] if names else platform.processor()}, {os.cpu_count()} cores, "
        f"{'AVX-512' if 'avx512f' in cpuinfo else 'AVX2'}",
        "predict": rates(args.data),
        "filter_ascent_s": ascent_seconds(),
    }
    (RESULTS / f"inference_speed-{args.label}.json").write_text(json.dumps(record, indent=1) + "\n")
    records = sorted(
        (json.loads(p.read_text()) for p in RESULTS.glob("inference_speed-*.json")),
        key=lambda r: r["date"],
    )
    (RESULTS / "inference_speed.md").write_text(table(records))
    print(table(records))


if __name__ == "__main__":
    main()
