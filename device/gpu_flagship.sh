#!/usr/bin/env bash
# Issue 14 on a lent GPU, one prepared script under 10 minutes: the flagship@2 recipe on a
# network 2x as wide (widths 64-128-256-512) for as many epochs as fit (up to 300; bf16), then
# distilled into the shippable CPU-size network (flagship@2's cnn-baseline, widths 32-256)
# with the wide run as teacher, on the wide run's validation split. Both are evaluated on
# validation (where they are selected) and PublicTest (reported), and their small files and
# the distilled checkpoint (~14 MB) are copied to $OUT.
# Carried: device/ (fer2013.tar.xz and wheels, as for gpu_seed.sh; pack_data.py says how).
#   OUT=$OUT BUDGET_S=330 DISTILL_S=150 bash device/gpu_flagship.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; BUDGET_S=${BUDGET_S:-330}; DISTILL_S=${DISTILL_S:-150}
TARBALL=${TARBALL:-device/fer2013.tar.xz}
source device/setup.sh
DATA=/tmp/data/fer2013
WIDE='{"widths": [64, 128, 256, 512], "stage_dropout": 0.1, "dropout": 0.3}'
F="python3 -m ferlab"

# Epochs that fit: time a 2-epoch probe of the wide network at batch 512 (lr scaled x4).
cat > /tmp/wide.yaml <<YAML
model_args: $WIDE
batch_size: 512
lr: 0.2
YAML
train_wide() {  # $1: out, $2: epochs
  $F train --data $DATA --recipe flagship@2 --config /tmp/wide.yaml --out "$1" --epochs "$2" \
    --warmup-epochs 5 --ema-decay 0.9995 --quiet 2>&1 | grep -v -i warn | tail -4 | tee -a "$OUT/gpu.log"
}
start=$(date +%s); train_wide /tmp/probe 2; probe=$(( $(date +%s) - start ))
EPOCHS=$(python3 -c "print(max(20, min(300, int(($BUDGET_S - 20) / max(1, $probe / 2)))))")
log "probe: 2 epochs in ${probe}s (with start-up) -> $EPOCHS epochs"
train_wide /tmp/wide "$EPOCHS"; log "wide done"

# The shippable network learns from the wide one's cached answers on the same split.
$F train --data $DATA --recipe flagship@2 --out /tmp/student --batch-size 512 --lr 0.2 \
  --teacher /tmp/wide --split /tmp/wide/split.json --epochs 300 --minutes "$(python3 -c "print($DISTILL_S/60)")" \
  --quiet 2>&1 | grep -v -i warn | tail -4 | tee -a "$OUT/gpu.log"
log "distillation done"
for run in wide student; do
  mkdir -p "$OUT/$run"
  for f in metrics.json metrics.csv curves.png config.yaml env.json split.json; do
    cp /tmp/$run/$f "$OUT/$run/" 2>/dev/null || log "missing $run/$f"
  done
  $F evaluate /tmp/$run --data $DATA --split val --json > "$OUT/$run/eval-val.json"
  $F evaluate /tmp/$run --data $DATA --split PublicTest --json > "$OUT/$run/eval-publictest.json"
done
$F export /tmp/student --weights "$OUT/student/student.pt" 2>&1 | tail -1 | tee -a "$OUT/gpu.log"
log end
