"""The flagship@2 campaign so far: its validation curve against CPU-hours, and a checkpoint
scored on validation and PublicTest (plain and TTA, raw and EMA weights) at this point.

    .venv/bin/python experiments/flagship_campaign.py RUN ../shared/data/fer2013.zip [CKPT ...]

RUN is the campaign's run folder (kept outside the work tree; its latest state is committed in
results/flagship/campaign/). Scores RUN's last checkpoint, or each CKPT given (copies of it
kept after earlier epochs, so that points can be scored later on an idle CPU); adds the points
to results/flagship/campaign.json and redraws results/flagship/campaign.png. PublicTest is
reported, never used to choose.
"""

import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ferlab.data import RAW, load
from ferlab.evaluation import evaluate
from ferlab.inference import load_model
from ferlab.runs import RunFolder

HERE = Path(__file__).resolve().parents[1] / "results" / "flagship"  # its records


def score(checkpoint: Path, run: Path, data: str) -> dict:
    raw, _ = load(data, RAW)
    _, val = RunFolder(run).read_split().apply(raw)
    public = raw.split("PublicTest")
    point = {}
    for weights in ("final", "raw"):
        loaded = load_model(checkpoint, weights=weights)
        point["epoch"] = loaded.card.epochs
        for name, faces in (("val", val), ("PublicTest", public)):
            for tta in (False, True) if weights == "final" else (False,):
                r = evaluate(loaded, faces, tta=tta).report
                key = f"{name}{'_tta' if tta else ''}_{'ema' if weights == 'final' else 'raw'}"
                point[key] = round(r["accuracy"], 4)
    return point


def main(run: Path, data: str, *checkpoints: str) -> None:
    history = RunFolder(run).read_history()
    hours = np.cumsum(np.nan_to_num(history["epoch_seconds"])) / 3600
    record_file = HERE / "campaign.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {"points": []}
    for checkpoint in [Path(c) for c in checkpoints] or [RunFolder(run).last]:
        point = score(checkpoint, run, data)
        point["cpu_hours"] = round(float(hours[point["epoch"] - 1]), 2)
        kept = [p for p in record["points"] if p["epoch"] != point["epoch"]]
        record["points"] = sorted(kept + [point], key=lambda p: p["epoch"])
        print(json.dumps(point, indent=1))
    record["curve"] = {
        "epoch": history["epoch"],
        "cpu_hours": [round(float(h), 3) for h in hours],
        "val_acc_ema": history["val_acc"],
        "val_acc_raw": history["val_acc_raw"],
        "epoch_seconds": history["epoch_seconds"],
    }
    record["command"] = "python experiments/flagship_campaign.py RUN DATA [CKPT ...]"
    record_file.write_text(json.dumps(record, indent=1) + "\n")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(hours, history["val_acc"], "-o", ms=3, label="validation, EMA weights")
    ax.plot(hours, history["val_acc_raw"], "--o", ms=3, label="validation, raw weights")
    for p in record["points"]:
        ax.plot(p["cpu_hours"], p["PublicTest_tta_ema"], "k*", ms=9)
    ax.plot([], [], "k*", label="PublicTest, EMA + TTA (scored once per point)")
    ax.axhline(0.658, color="gray", lw=0.8, ls=":", label="default (flagship@1) PublicTest")
    ax.set_xlabel("CPU-hours of training (2-core AVX2, shared with other work)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.1, 0.75)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(HERE / "campaign.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], *sys.argv[3:])
