"""The flagship@2 recipe's options compared by short runs of equal length.

    .venv/bin/python experiments/flagship_compare_recipes.py train DATA ROOT NAME...
    .venv/bin/python experiments/flagship_compare_recipes.py score DATA ROOT

Every candidate is flagship@2 shortened to SHORT (same epochs, warmup and EMA horizon for all)
with one option changed; `train` runs the named candidates one after another into ROOT/NAME
(two lanes ran side by side, each with OMP_NUM_THREADS=1), `score` reads every finished one on
its duplicate-free validation split (EMA and raw weights; the choice is made here) and on
PublicTest (reported once per candidate, never used to choose), and writes
compare_recipes.json and compare_recipes.md beside this script.
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

from ferlab.data import RAW, load
from ferlab.evaluation import evaluate
from ferlab.inference import load_model
from ferlab.runs import RunFolder
from ferlab.training import TrainConfig, recipe_settings, train

HERE = Path(__file__).resolve().parents[1] / "results" / "flagship"  # its records
# 3 epochs with one of warmup; an EMA decay of 0.99 averages the last ~100 of the ~600 steps,
# about the share of the run that 0.999 averages over the campaign's 100 epochs.
SHORT = dict(epochs=3, warmup_epochs=1, ema_decay=0.99)
BASE = "flagship@2"
CANDIDATES = {  # run folder: (what changes, the changed settings)
    "sgd-cosine": ("flagship@2 (SGD + Nesterov, warmup + cosine)", {}),
    "adamw-onecycle": (
        "AdamW + OneCycle, lr 3e-3 (flagship@1's optimizer)",
        dict(optimizer="adamw", schedule="onecycle", lr=3e-3, warmup_epochs=None),
    ),
    "mixup-0.2": ("mixup a=0.2", dict(mixup=0.2)),
    "smoothing-0.2": ("label smoothing 0.2 (not 0.1)", dict(label_smoothing=0.2)),
    "no-stage-dropout": (
        "no dropout after the stages",
        dict(model_args={"stage_dropout": 0.0, "dropout": 0.3}),
    ),
    "wide-1.5x": (
        "x1.5 wide (48-96-192-384)",
        dict(model_args={"stage_dropout": 0.1, "dropout": 0.3, "widths": [48, 96, 192, 384]}),
    ),
}


def candidate_config(slug: str, data: str, root: Path) -> TrainConfig:
    base = TrainConfig(**recipe_settings(BASE))
    changes = SHORT | CANDIDATES[slug][1]
    return replace(base, data=data, out=str(root / slug), quiet=True, **changes)


def train_candidates(data: str, root: Path, slugs: list[str]) -> None:
    for slug in slugs:
        train(candidate_config(slug, data, root))


def score(data: str, root: Path) -> list[dict]:
    raw, _ = load(data, RAW)
    public = raw.split("PublicTest")
    rows = []
    for slug, (name, changes) in CANDIDATES.items():
        run = RunFolder(root / slug)
        if not run.finished():
            continue
        _, val = run.read_split().apply(raw)
        row = {"candidate": name, "run": slug, "changes": changes}
        history = run.read_history()
        row["epochs"] = len(history["epoch"])
        row["minutes"] = round(sum(history["epoch_seconds"]) / 60, 1)
        for weights, key in (("final", "ema"), ("raw", "raw")):
            loaded = load_model(run.last, weights=weights)
            row[f"params_{key}"] = sum(p.numel() for p in loaded.model.parameters())
            for split, faces in (("val", val), ("PublicTest", public)):
                r = evaluate(loaded, faces).report
                row[f"{split}_{key}"] = round(r["accuracy"], 4)
        rows.append(row)
        print(row, flush=True)
    return rows


def write(rows: list[dict], data: str) -> None:
    record = {
        "command": "python experiments/flagship_compare_recipes.py score DATA ROOT",
        "base": BASE,
        "short": SHORT,
        "data": data,
        "rows": rows,
    }
    (HERE / "compare_recipes.json").write_text(json.dumps(record, indent=1) + "\n")
    best = max(rows, key=lambda r: r["val_ema"])
    lines = [
        "| candidate (flagship@2, 3 epochs, one change) | params | minutes | val (EMA) "
        "| val (raw) | PublicTest (EMA) | PublicTest (raw) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        mark = "**" if r is best else ""
        lines.append(
            f"| {r['candidate']} | {r['params_ema'] / 1e6:.2f}M | {r['minutes']} "
            f"| {mark}{100 * r['val_ema']:.1f}%{mark} | {100 * r['val_raw']:.1f}% "
            f"| {100 * r['PublicTest_ema']:.1f}% | {100 * r['PublicTest_raw']:.1f}% |"
        )
    (HERE / "compare_recipes.md").write_text("\n".join(lines) + "\n")


def main(command: str, data: str, root: str, *slugs: str) -> None:
    if command == "train":
        train_candidates(data, Path(root), list(slugs) or list(CANDIDATES))
    else:
        write(score(data, Path(root)), data)


if __name__ == "__main__":
    main(*sys.argv[1:])
