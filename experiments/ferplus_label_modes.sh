#!/usr/bin/env bash
# FER+ label modes compared (Barsoum et al. 2016): the same network and recipe, equal short
# runs, one per mode, one at a time; validation = a seed-0 split carved from FER2013Train (the
# majority-labelled faces of it), selection by its accuracy. Then each run's best checkpoint is
# scored on the validation split with TTA. Usage:
#   experiments/ferplus_label_modes.sh FERPLUS_DATA RUNS_FOLDER [EPOCHS]
# Runs land in RUNS_FOLDER/<mode>; the table is read from their metrics.json (results/ferplus).
set -euo pipefail
DATA=$1 RUNS=$2 EPOCHS=${3:-3}
F=${FERLAB:-ferlab}
for mode in majority probability crossentropy multi-target; do
  [[ -f $RUNS/$mode/metrics.json ]] && continue
  if [[ -f $RUNS/$mode/checkpoints/last.ckpt ]]; then  # stopped mid-run: continue it
    $F train --data "$DATA" --out "$RUNS/$mode" --resume --quiet
    continue
  fi
  rm -rf "${RUNS:?}/$mode"  # stopped before its first epoch: nothing to keep
  # flagship@2's network and optimiser, no EMA and no label smoothing (the modes are targets).
  $F train --data "$DATA" --out "$RUNS/$mode" --labels "$mode" --model cnn-baseline \
    --epochs "$EPOCHS" --batch-size 128 --lr 0.05 --optimizer sgd --schedule cosine \
    --warmup-epochs 1 --crop 44 --augment standard --label-smoothing 0 --quiet
done
for mode in majority probability crossentropy multi-target; do
  [[ -d $RUNS/$mode/checkpoints ]] || continue  # its run folder is elsewhere: its record stands
  $F evaluate "$RUNS/$mode" --data "$DATA" --split val --tta --json > "$RUNS/$mode/val-tta.json"
done
