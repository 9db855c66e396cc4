#!/usr/bin/env bash
# The study at full size (results/study/full/README.md records each run):
#   train DIR    trains study-dnn-full@1, study-dnn-learns@1 and study-vgg@1 one after another
#                in the background, into DIR/{dnn-study-settings,dnn-learns,vgg}; a run with a
#                checkpoint continues (--resume), a finished one is left alone. Run it again
#                after an interruption. DIR stays outside the work tree (the VGG's checkpoints
#                are about 0.5 GB).
#   record DIR   the finished runs' small files, their validation and PublicTest figures (plain
#                and TTA) and the VGG's figure arrays into results/study/full/
# Usage: experiments/study_full.sh STAGE DIR [DATA]
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=$1 DIR=$2 DATA=${3:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
F=$PWD/.venv/bin/ferlab
RUNS="dnn-study-settings:study-dnn-full@1 dnn-learns:study-dnn-learns@1 vgg:study-vgg@1"

train_all() {  # sequential: the runs share two cores
  for pair in $RUNS; do
    name=${pair%%:*} recipe=${pair#*:} run=$DIR/${pair%%:*}
    if grep -qs '"stopped_by": "epochs"' "$run/metrics.json"; then echo "$name finished"; continue; fi
    if [ -f "$run/checkpoints/last.ckpt" ]; then R=--resume; else R=; rm -rf "$run"; fi
    echo "[$(date -u +%FT%TZ)] $name: $recipe $R"
    $F train --data "$DATA" --recipe "$recipe" --out "$run" --quiet $R >> "$run.log" 2>&1
  done
  echo "[$(date -u +%FT%TZ)] all trained"
}

case $STAGE in
  train)
    mkdir -p "$DIR"
    lscpu > "$DIR/lscpu-$(date -u +%Y%m%dT%H%M%S).txt"
    nohup bash -c "$(declare -f train_all); F=$F DIR=$DIR DATA=$DATA RUNS='$RUNS' train_all" \
      >> "$DIR/queue.log" 2>&1 &
    echo "training in the background: $DIR/queue.log" ;;
  record)
    .venv/bin/python experiments/study_full_record.py "$DIR" "$DATA" results/study/full ;;
  *) echo "unknown stage $STAGE: train | record" >&2; exit 2 ;;
esac
