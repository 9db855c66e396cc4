# Sourced by the device scripts: the log, the carried wheels on PYTHONPATH, the data unpacked
# from $TARBALL into /tmp/data. Needs OUT and TARBALL set.
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu.log"; }
log start; nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee -a "$OUT/gpu.log"
python3 -m pip install -q --no-deps --no-index --target /tmp/pylib device/wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/pylib:$PWD/src FERLAB_CACHE=/tmp/ferlab-cache
mkdir -p /tmp/data && tar -xJf "$TARBALL" -C /tmp/data && log "data unpacked"
