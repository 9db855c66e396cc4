#!/usr/bin/env bash
# The package's `fast` model: cnn-small distilled from the shipped `default` with
# recipe RECIPE (fast@3; fast@1 and fast@2 made the earlier ones), evaluated once and shipped as
# src/ferlab/weights/fast.pt. Run it again whenever `default` improves (the teacher's answers
# are cached per teacher file).
# Usage: experiments/fast_make.sh [RUN] [DATA] [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-/root/runs/fast}
DATA=${2:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
RECIPE=${3:-fast@3}
.venv/bin/ferlab train --data "$DATA" --recipe "$RECIPE" --out "$RUN" --quiet
experiments/ship_model.sh "$RUN" "$DATA" results/fast fast
