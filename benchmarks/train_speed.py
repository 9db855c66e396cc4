"""Training throughput of every registered model on this machine: fp32, fp32 + channels_last,
bf16 autocast + channels_last. One optimizer step = forward + backward + AdamW on a batch of
128 random 48x48 faces (the model step alone; augmentation and loading are measured by real
runs, see results/train/*/metrics.json).

Usage: python benchmarks/train_speed.py   (run with nothing else using the CPU)
Writes benchmarks/results/train_speed.json and .md.
"""

import json
import os
import platform
import time
from pathlib import Path

import torch

from ferlab.models import create, list_models

BATCH = 128
TRAIN_FACES = 25_837  # FER2013 Training minus a 10% validation split
MODES = {"fp32": (False, False), "fp32+cl": (False, True), "bf16+cl": (True, True)}


def rate(name: str, bf16: bool, channels_last: bool, budget_s: float = 12.0) -> dict:
    torch.manual_seed(0)
    model = create(name)
    x = torch.rand(BATCH, 1, 48, 48)
    y = torch.randint(0, 7, (BATCH,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def step() -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    warm = step()
    if warm > budget_s:  # e.g. bf16 without native CPU support: one slow step says enough
        return {"img_s": round(BATCH / warm, 1), "steps": 1, "note": "one step (slow)"}
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < budget_s and len(times) < 20:
        times.append(step())
    best = sorted(times)[len(times) // 2]  # median step
    return {"img_s": round(BATCH / best, 1), "steps": len(times)}


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    results = {}
    for name in list_models(standalone=True):
        results[name] = {}
        for mode, (bf16, cl) in MODES.items():
            r = rate(name, bf16, cl)
            r["epoch_s"] = round(TRAIN_FACES / r["img_s"], 0)
            results[name][mode] = r
            print(name, mode, r, flush=True)
    out = {
        "command": "python benchmarks/train_speed.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"native CPU bf16: {bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}",
        "batch": BATCH,
        "epoch_faces": TRAIN_FACES,
        "results": results,
    }
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / "train_speed.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        f"# Training speed ({out['machine']})",
        "",
        f"`{out['command']}`; batch {BATCH}; seconds per FER2013 epoch = {TRAIN_FACES} / "
        "img/s (model step only).",
        "",
        "| model | fp32 img/s | fp32+channels_last img/s | bf16+channels_last img/s | "
        "epoch s (best) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        best = min(m["epoch_s"] for m in r.values())
        lines.append(
            f"| {name} | {r['fp32']['img_s']} | {r['fp32+cl']['img_s']} | "
            f"{r['bf16+cl']['img_s']} | {best:.0f} |"
        )
    # Other benchmarks (train_step.py) keep their own sections below this table.
    md = folder / "train_speed.md"
    old = md.read_text() if md.is_file() else ""
    others = old[old.find("\n## ") :] if "\n## " in old else ""
    md.write_text("\n".join(lines) + "\n" + others)


if __name__ == "__main__":
    main()
