#!/usr/bin/env bash
# Ship a run's selected checkpoint as a package model: evaluate it once on validation (where
# it was selected) and PublicTest, with and without TTA, record the figures in RECORD/, and
# export it to src/ferlab/weights/NAME.pt (its card keeps the recipe, epochs, training hours,
# split and these metrics).
# Usage: results/ship_model.sh RUN DATA RECORD NAME     (RUN stopped; NAME: default | fast)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1 DATA=$2 R=$3 NAME=$4
mkdir -p "$R"
F=.venv/bin/ferlab
$F evaluate "$RUN" --data "$DATA" --split val --json > "$R/eval-val.json"
$F evaluate "$RUN" --data "$DATA" --split val --tta --json > "$R/eval-val-tta.json"
rm -rf "$R/eval-publictest"
$F evaluate "$RUN" --data "$DATA" --split PublicTest --out "$R/eval-publictest" --json \
  > "$R/eval-publictest.json"
rm "$R/eval-publictest/predictions.csv"  # per-face rows of the test split are not kept here
$F evaluate "$RUN" --data "$DATA" --split PublicTest --tta --json > "$R/eval-publictest-tta.json"
cp "$RUN/metrics.json" "$R/train_metrics.json"
.venv/bin/python - "$R" "$RUN" <<'PY'
import json, sys
from pathlib import Path

from ferlab.runs import RunFolder
from ferlab.training import TrainConfig

r, run = Path(sys.argv[1]), RunFolder(Path(sys.argv[2]))
ev = {k: json.loads((r / f"eval-{k}.json").read_text())
      for k in ("val", "val-tta", "publictest", "publictest-tta")}
train = run.read_summary()
history = run.read_history()
config = TrainConfig.from_yaml(run.config)
metrics = {
    "recipe": config.recipe,
    "model": train["model"],
    "params": train["params"],
    "epochs": train["epochs_completed"],
    "best_epoch": train["best_epoch"],
    "training_minutes": round(sum(s for s in history["epoch_seconds"] if s == s) / 60, 1),
    "stopped_by": train["stopped_by"],
    "weights": f"EMA (decay {config.ema_decay})" if config.ema_decay else "raw",
    "val": {"n": ev["val"]["n"], "accuracy": ev["val"]["accuracy"],
            "accuracy_tta": ev["val-tta"]["accuracy"], "macro_f1": ev["val"]["macro_f1"],
            "majority_accuracy": ev["val"]["majority_accuracy"]},
    "PublicTest": {"n": ev["publictest"]["n"], "accuracy": ev["publictest"]["accuracy"],
                   "accuracy_tta": ev["publictest-tta"]["accuracy"],
                   "macro_f1": ev["publictest"]["macro_f1"],
                   "majority_accuracy": ev["publictest"]["majority_accuracy"]},
    "tta": ev["val-tta"]["tta"],
}
if config.teacher:
    metrics["teacher"] = config.teacher
(r / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
print(json.dumps(metrics, indent=1))
PY
$F export "$RUN" --weights "src/ferlab/weights/$NAME.pt" --metrics "$R/metrics.json" --force
