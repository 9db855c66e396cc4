#!/usr/bin/env bash
# Issue 7: the flagship model. Trains it (about 2 hours on the 2-core CPU, in the background),
# evaluates it once on validation and PublicTest (with and without TTA), ships the weights as
# the package's `default` model, and records everything here.
# Usage: results/flagship/make.sh [DATA]   (RUN=runs/flagship; skips training if it finished)
# Its validation split is the seed-0 split of results/train/split-seed0.json (same ids).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
RUN=${RUN:-runs/flagship}
R=results/flagship
[[ -f $RUN/metrics.json ]] || ferlab train --data "$DATA" --recipe flagship@1 --out "$RUN" --quiet

for f in metrics.csv curves.png config.yaml env.json; do cp "$RUN/$f" "$R/"; done
cp "$RUN/metrics.json" "$R/train_metrics.json"
ferlab evaluate "$RUN" --data "$DATA" --split val --json > $R/eval-val.json
ferlab evaluate "$RUN" --data "$DATA" --split val --tta --json > $R/eval-val-tta.json
rm -rf $R/eval-publictest
ferlab evaluate "$RUN" --data "$DATA" --split PublicTest --out $R/eval-publictest --json \
  > $R/eval-publictest.json
rm $R/eval-publictest/predictions.csv  # per-face rows of the test split are not kept here
ferlab evaluate "$RUN" --data "$DATA" --split PublicTest --tta --json > $R/eval-publictest-tta.json
python - "$R" <<'PY'
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
ev = {k: json.loads((r / f"eval-{k}.json").read_text())
      for k in ("val", "val-tta", "publictest", "publictest-tta")}
train = json.loads((r / "train_metrics.json").read_text())
config = (r / "config.yaml").read_text()
recipe = next(l.split(": ", 1)[1] for l in config.splitlines() if l.startswith("recipe:"))
metrics = {
    "recipe": recipe,
    "model": train["model"],
    "params": train["params"],
    "epochs": train["epochs_completed"],
    "best_epoch": train["best_epoch"],
    "training_minutes": round(train["train_seconds"] / 60, 1),
    "stopped_by": train["stopped_by"],
    "val": {"n": ev["val"]["n"], "accuracy": ev["val"]["accuracy"],
            "accuracy_tta": ev["val-tta"]["accuracy"], "macro_f1": ev["val"]["macro_f1"]},
    "PublicTest": {"n": ev["publictest"]["n"], "accuracy": ev["publictest"]["accuracy"],
                   "accuracy_tta": ev["publictest-tta"]["accuracy"],
                   "macro_f1": ev["publictest"]["macro_f1"]},
    "tta": ev["val-tta"]["tta"],
}
(r / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
print(json.dumps(metrics, indent=1))
PY
ferlab export "$RUN" --weights src/ferlab/weights/default.pt --metrics $R/metrics.json --force
