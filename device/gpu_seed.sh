#!/usr/bin/env bash
# One prepared run on the lent GPU: a seed model (default vgg-seed) on the full shared FER2013 (bf16).
# Carried: device/ (fer2013.tar.xz: the shared zip's files re-packed solid; kornia wheels).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; MODEL=${MODEL:-vgg-seed}; EPOCHS=${EPOCHS:-50}; MINUTES=${MINUTES:-7}; TARBALL=${TARBALL:-device/fer2013.tar.xz}
source device/setup.sh
python3 -c "import torch, lightning, kornia; print('torch', torch.__version__, 'lightning', lightning.__version__, 'kornia', kornia.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/gpu.log"
python3 -m ferlab data info /tmp/data/fer2013 --json > "$OUT/data_info.json" 2>>"$OUT/gpu.log"; log "data read"
python3 -m ferlab train --data /tmp/data/fer2013 --model "$MODEL" --out /tmp/run/"$MODEL" \
  --epochs "$EPOCHS" --minutes "$MINUTES" --batch-size 128 --lr 1e-3 --label-smoothing 0.1 \
  --augment standard --quiet 2>&1 | grep -v -i warn | tail -15 | tee -a "$OUT/gpu.log"
log "train done"
for f in metrics.json metrics.csv curves.png config.yaml env.json split.json; do
  cp /tmp/run/$MODEL/$f "$OUT/" 2>/dev/null || log "missing $f"
done
log end
