#!/usr/bin/env bash
# flagship@1: trains it (about 2 hours on the 2-core CPU, in the background), evaluates it
# once on validation and PublicTest (with and without TTA) and records everything here. It no
# longer ships: the shipped `default` is flagship@2's (experiments/flagship_ship_campaign.sh); `ferlab ship` would
# refuse to replace it with this weaker run anyway.
# Usage: experiments/flagship_v1.sh [DATA]   (RUN=runs/flagship; skips training if it finished)
# Its validation split is the seed-0 split of results/train/split-seed0.json (same ids).
set -euo pipefail
cd "$(dirname "$0")/.."
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
