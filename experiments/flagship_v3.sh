#!/usr/bin/env bash
# Flagship v3, stage by stage (results/flagship/README.md records each stage's figures):
#   member RUN     a finished member run, named after its member (.../v3-resnet, .../v3-wide):
#                  its selected weights into results/flagship/MEMBER/weights.pt, measured on
#                  validation and PublicTest
#   wide RUN       the v3-wide@1 member (cnn-baseline 1.5x as wide) in the background, resumable
#   ensembles      the ensembles of 2 and 3 members, equal and with weights chosen on validation
#                  (with TTA); the last one is results/flagship/v3/ensemble.pt, the teacher
#   student RUN    the student (recipe v3-student@1) trained in the background, resumable
#   ship RUN       the student, finished, measured and shipped as `default` if it beats it
# Usage: experiments/flagship_v3.sh STAGE [RUN] [DATA]
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=$1 RUN=${2:-} DATA=${3:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
F=.venv/bin/ferlab
V3=results/flagship/v3
DEFAULT=results/flagship/v2/weights.pt    # flagship@2's epoch 80, whatever `default` becomes
PHOTO=results/photos/photo2/weights.pt
RESNET=results/flagship/v3-resnet/weights.pt

train_in_background() {  # RECIPE RUN: a new run, or the same run continued with --resume
  if [ -f "$2/checkpoints/last.ckpt" ]; then R=--resume; else R=; fi
  nohup $F train --data "$DATA" --recipe "$1" --out "$2" --quiet $R >> "$2.log" 2>&1 &
}

measure() {  # measure MODEL_REF OUT_PREFIX: validation and PublicTest, plain and TTA
  for split in val PublicTest; do
    $F evaluate "$1" --data "$DATA" --split $split --json > "$2-$split.json"
    $F evaluate "$1" --data "$DATA" --split $split --tta --json > "$2-$split-tta.json"
  done
}

case $STAGE in
  member)
    M=results/flagship/$(basename "$RUN")
    $F export "$RUN" --weights "$M/weights.pt" --force
    measure "$M/weights.pt" "$M/eval" ;;
  ensembles)
    mkdir -p $V3
    $F ensemble $DEFAULT $PHOTO --out $V3/ens2.pt --force
    $F ensemble $DEFAULT $PHOTO $RESNET --out $V3/ens3.pt --force
    $F ensemble $DEFAULT $PHOTO $RESNET --out $V3/ensemble.pt --force --choose-weights \
      --data "$DATA" --tta | tee $V3/weights-chosen.txt
    for e in ens2 ens3 ensemble; do measure $V3/$e.pt $V3/$e; done
    rm $V3/ens2.pt $V3/ens3.pt ;;  # rebuilt in seconds; 10-21 MB each
  wide) train_in_background v3-wide@1 "$RUN" ;;
  student) train_in_background v3-student@1 "$RUN" ;;
  ship)
    experiments/ship_model.sh "$RUN" "$DATA" $V3/student default ;;
  *) echo "unknown stage $STAGE: member | wide | ensembles | student | ship" >&2; exit 2 ;;
esac
