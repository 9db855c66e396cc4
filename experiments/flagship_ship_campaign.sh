#!/usr/bin/env bash
# "Ship as you go": evaluate the flagship@2 campaign's best checkpoint (its EMA
# weights, selected on the duplicate-free validation split) once on validation and PublicTest,
# with and without TTA, record it under results/flagship/v2/, and ship it as the package's
# `default` (experiments/ship_model.sh).
# Usage: experiments/flagship_ship_campaign.sh [RUN] [DATA]   (RUN: the campaign folder, stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-/root/campaign/flagship2}
DATA=${2:-${FERLAB_DATA:-../shared/data/fer2013.zip}}
experiments/ship_model.sh "$RUN" "$DATA" results/flagship/v2 default
