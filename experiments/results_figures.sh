#!/usr/bin/env bash
# Regenerates the committed figures under results/ from finished runs (CPU, this machine).
# Usage: experiments/results_figures.sh [DATA]   with runs/cnn-baseline-cpu and runs/dnn-seed-cpu trained:
#   ferlab train --data DATA --model cnn-baseline --out runs/cnn-baseline-cpu --epochs 14 \
#     --minutes 55 --lr 3e-3 --label-smoothing 0.1 --augment standard --quiet
#   ferlab train --data DATA --model dnn-seed --out runs/dnn-seed-cpu --epochs 12 --minutes 22 \
#     --lr 1e-3 --quiet
# The H200 runs (results/train/*-h200) came from device/gpu_seed.sh (see results/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
CNN=runs/cnn-baseline-cpu
DNN=runs/dnn-seed-cpu
R=results

copy_run() {  # the small files of a run folder (no checkpoints)
  mkdir -p "$2"
  for f in metrics.json metrics.csv curves.png config.yaml env.json; do cp "$1/$f" "$2/"; done
}
copy_run $CNN $R/train/cnn-baseline-cpu
copy_run $DNN $R/train/dnn-seed-cpu
cp $CNN/split.json $R/train/split-seed0.json  # the validation ids both CPU runs used (seed 0)

rm -rf $R/compare $R/eval $R/explain.tmp
ferlab compare $CNN $DNN --out $R/compare/cpu
ferlab compare $R/train/vgg-seed-h200 $R/train/dnn-seed-h200 --out $R/compare/h200

ferlab evaluate $CNN --data "$DATA" --split val --out $R/eval/cnn-baseline-val --json > /dev/null
ferlab evaluate $CNN --data "$DATA" --split PublicTest --json > $R/eval/cnn-baseline-publictest.json
ferlab evaluate $CNN --data "$DATA" --split PublicTest --tta --json \
  > $R/eval/cnn-baseline-publictest-tta.json
ferlab evaluate $DNN --data "$DATA" --split PublicTest --json > $R/eval/dnn-seed-publictest.json
ferlab evaluate $DNN --data "$DATA" --split PublicTest --tta --json \
  > $R/eval/dnn-seed-publictest-tta.json
rm $R/eval/cnn-baseline-val/predictions.csv  # per-face rows stay out of the repo

E=$R/explain.tmp
ferlab explain saliency $CNN --data "$DATA" --split PublicTest --per-class 2 --out $E/saliency
ferlab explain saliency $CNN --data "$DATA" --split PublicTest --per-class 2 --method gradcam \
  --out $E/gradcam
FACE=$(python -c "
from ferlab.data import load, RAW
f, _ = load('$DATA', preprocess=RAW); t = f.split('PublicTest')
print(t.ids[list(t.labels).index(3)])")
ferlab explain activations $CNN --layer features.block1.conv2 --image "$FACE" --data "$DATA" \
  --out $E/activations-early
ferlab explain activations $CNN --layer features.block4.conv2 --image "$FACE" --data "$DATA" \
  --out $E/activations-deep
ferlab explain filters $CNN --layer features.block2.act2 --steps 200 --out $E/filters-early
ferlab explain filters $CNN --layer features.block4.act2 --filters 0-63 --steps 200 \
  --out $E/filters-deep
ferlab explain filters $CNN --layer logits --steps 200 --out $E/filters-classes
mkdir -p $R/explain
for d in $E/*; do for f in "$d"/*; do cp "$f" "$R/explain/$(basename "$d")-$(basename "$f")"; done; done
rm -rf $E
