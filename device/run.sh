#!/usr/bin/env bash
# One prepared run on a lent GPU machine (the `device` tool; carry: ["device"]): unpack the
# carried data and wheels, train a packaged recipe for at most MINUTES, evaluate the run on
# its validation split and PublicTest, and copy its small files (and, with WEIGHTS=1, a
# weights file) to $OUT. Extra arguments go to `ferlab train`.
#   OUT=$OUT RECIPE=gpu-wide@1 MINUTES=6 bash device/run.sh [--epochs 60 ...]
# Carried data: python experiments/device_pack_data.py ../shared/data/fer2013.zip device/
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; RECIPE=${RECIPE:?give RECIPE, e.g. gpu-wide@1}; MINUTES=${MINUTES:-6}
TARBALL=${TARBALL:-device/fer2013.tar.xz}; RUN=/tmp/run; DATA=/tmp/data/fer2013
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }
log start; nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee -a "$OUT/gpu.log"
if compgen -G "device/wheels/*.whl" > /dev/null; then
  python3 -m pip install -q --no-deps --no-index --target /tmp/pylib device/wheels/*.whl
fi
export PYTHONPATH=/tmp/pylib:$PWD/src FERLAB_CACHE=/tmp/ferlab-cache
mkdir -p /tmp/data && tar -xJf "$TARBALL" -C /tmp/data && log "data unpacked"
F="python3 -m ferlab"
$F train --data $DATA --recipe "$RECIPE" --out $RUN --minutes "$MINUTES" --quiet "$@" 2>&1 \
  | tail -8 | tee -a "$OUT/gpu.log"
log "train done"
for f in metrics.json metrics.csv curves.png config.yaml env.json split.json; do
  cp "$RUN/$f" "$OUT/" 2>/dev/null || log "missing $f"
done
$F evaluate $RUN --data $DATA --split val --json > "$OUT/eval-val.json"
$F evaluate $RUN --data $DATA --split PublicTest --json > "$OUT/eval-publictest.json"
if [[ ${WEIGHTS:-0} == 1 ]]; then $F export $RUN --weights "$OUT/weights.pt" | tee -a "$OUT/gpu.log"; fi
log end
