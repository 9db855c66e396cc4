"""Search for training settings that let the study's exact 51 x 900 DNN learn.

Each probe is a short recorded run of `dnn-study` (architecture and parameter count fixed:
only dropout rate, LeakyReLU slope, optimizer, learning rate, warmup and gradient clipping
vary) on the same duplicate-free validation split: 3 epochs of 34% of Training each (about one
pass over the data). A probe has learned when its validation accuracy is clearly above the
majority class (25.1%). Finished probes are kept and skipped on a rerun.

    .venv/bin/python experiments/study_dnn_search.py ../shared/data/fer2013.zip /root/study/probes

writes results/study/dnn_search.json and dnn_search.md (with the gradient ratio of each
setting at initialization: first layer / last layer gradient norm on one batch).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ferlab.data import RAW, load
from ferlab.explain.gradients import gradient_norms
from ferlab.models import create
from ferlab.runs import RunFolder
from ferlab.training import TrainConfig, train
from ferlab.training.config import recipe_settings

HERE = Path(__file__).resolve().parents[1] / "results" / "study"  # its records
BASE = recipe_settings("study-dnn@1") | {"epochs": 3, "train_fraction": 0.34, "quiet": True}
PROBES = {
    "study-dnn@1": {},
    "slope 0.3": {"model_args": {"slope": 0.3}},
    "slope 0.5, dropout 0.1": {"model_args": {"slope": 0.5, "dropout": 0.1}},
    "slope 0.5, dropout 0": {"model_args": {"slope": 0.5, "dropout": 0.0}},
    "dropout 0, lr 1e-4": {"model_args": {"dropout": 0.0}, "lr": 1e-4},
    "slope 0.3, lr 1e-4": {"model_args": {"slope": 0.3}, "lr": 1e-4},
    "slope 0.5, dropout 0.1, sgd 0.01": {
        "model_args": {"slope": 0.5, "dropout": 0.1},
        "optimizer": "sgd",
        "lr": 0.01,
        "schedule": "cosine",
        "warmup_epochs": 1,
    },
    # Round 2, after round 1 showed the slope deciding: the best of it with gradient clipping.
    "slope 0.5, dropout 0, clip 1": {
        "model_args": {"slope": 0.5, "dropout": 0.0},
        "gradient_clip": 1.0,
    },
}


def gradient_ratio(model_args: dict, data: str) -> float:
    faces, _ = load(data, RAW)
    train_faces = faces.split("Training")
    pick = np.random.default_rng(0).choice(len(train_faces), 128, replace=False)
    x = torch.from_numpy(train_faces.images[pick]).float().div(255).unsqueeze(1)
    y = torch.as_tensor(train_faces.labels[pick])
    torch.manual_seed(0)
    norms = gradient_norms(create("dnn-study", **model_args), x, y)
    return float(norms[0] / norms[-1])


def main(data: str, root: Path) -> None:
    record_file = HERE / "dnn_search.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    split = None
    for name, change in PROBES.items():
        out = root / name.replace(" ", "_").replace(",", "").replace("@", "-")
        run = RunFolder(out)
        settings = BASE | change
        if not run.finished():
            cfg = TrainConfig(
                data=data, out=str(out), split_file=str(split) if split else None, **settings
            )
            train(cfg, resume=run.resumable(), force=run.is_run() and not run.resumable())
        split = split or run.split
        m = run.read_summary()
        history = run.read_history()
        record[name] = {
            "settings": {k: v for k, v in settings.items() if k != "quiet"},
            "val": m["val"]["accuracy"],
            "PublicTest": m.get("PublicTest", {}).get("accuracy"),
            "train_acc_last": round(history["train_acc"][-1], 4),
            "val_acc_by_epoch": [round(v, 4) for v in history["val_acc"]],
            "minutes": round(m["train_seconds"] / 60, 1),
            "gradient_first_to_last": round(
                gradient_ratio(settings.get("model_args", {}), data), 1
            ),
        }
        record_file.write_text(json.dumps(record, indent=1) + "\n")
        print(name, record[name]["val"], flush=True)
    lines = [
        "# The study's 51 x 900 DNN: settings probed (3 epochs x 34% of Training each)",
        "",
        "Command: `.venv/bin/python experiments/study_dnn_search.py ../shared/data/fer2013.zip "
        "/root/study/probes`. Majority class on validation: 25.1%.",
        "",
        "| setting | val acc by epoch | best val | train acc (last) "
        "| gradient first/last at init | minutes |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in record.items():
        by_epoch = ", ".join(f"{v:.1%}" for v in r["val_acc_by_epoch"])
        lines.append(
            f"| {name} | {by_epoch} | {r['val']:.1%} | {r['train_acc_last']:.1%} | "
            f"{r['gradient_first_to_last']:,} | {r['minutes']} |"
        )
    (HERE / "dnn_search.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
