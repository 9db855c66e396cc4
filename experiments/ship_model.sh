#!/usr/bin/env bash
# Ship a run's selected checkpoint as a package model with `ferlab ship` (measured on
# validation, where it was selected, and on PublicTest, plain and TTA; recorded in
# RECORD/metrics.json; refused if the shipped model scores higher on the same validation faces), and keep the
# PublicTest confusion record beside it.
# Usage: experiments/ship_model.sh RUN DATA RECORD NAME     (RUN stopped; NAME: default | fast)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1 DATA=$2 R=$3 NAME=$4
mkdir -p "$R"
F=.venv/bin/ferlab
rm -rf "$R/eval-publictest"
$F evaluate "$RUN" --data "$DATA" --split PublicTest --out "$R/eval-publictest" --json \
  > "$R/eval-publictest.json"
rm "$R/eval-publictest/predictions.csv"  # per-face rows of the test split are not kept here
cp "$RUN/metrics.json" "$R/train_metrics.json"
$F ship "$RUN" --as "$NAME" --data "$DATA" --record "$R"
