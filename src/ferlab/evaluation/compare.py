"""Compare training runs: a table and overlaid training curves (the study's CNN vs DNN)."""

import json
from pathlib import Path

from ferlab.atomic import write_text_atomic
from ferlab.errors import FerlabError
from ferlab.runs import RunFolder, common_split


def run_row(run: RunFolder) -> dict:
    m = run.read_summary()
    config = run.read_config() if run.config.is_file() else {}
    env = run.read_env()
    history = run.read_history()
    if not history["epoch"] or not m.get("epochs_completed"):
        raise FerlabError(f"{run.path}: no finished epoch to compare")
    return {
        "run": run.name,
        "model": m.get("model", config.get("model")),
        "params": m.get("params"),
        "best_val_accuracy": m.get("val", {}).get("accuracy"),
        "best_epoch": m.get("best_epoch"),
        "public_test_accuracy": m.get("PublicTest", {}).get("accuracy"),
        "epochs": m.get("epochs_completed"),
        "train_minutes": round(m.get("train_seconds", 0) / 60, 1),
        "hardware": env.get("cuda") or f"CPU x{env.get('threads', '?')}",
        "history": history,
    }


def compare(runs: list[Path], out: Path) -> dict:
    folders = [RunFolder(Path(r)) for r in runs]
    rows = [run_row(r) for r in folders]
    split = common_split(folders)  # refuses runs selected on different validation splits
    if split is None:
        split_text = "Validation split: not saved with these runs (ferlab <= 0.1 copies)."
    else:
        split_text = (
            f"Validation split (the same for every run): {len(split.ids)} faces, "
            f"{split.fraction:.0%} of Training, split seed {split.seed}"
            + (", identical faces kept on one side." if split.hashes else ", ids only.")
        )
    from ferlab.plots import plot_curves  # matplotlib: loaded to draw

    plot_curves(
        {r["run"]: r["history"] for r in rows}, out / "curves.png", title="training records"
    )
    table = [
        "| run | model | params | best val acc | PublicTest acc | epochs | minutes | hardware |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        table.append(
            f"| {r['run']} | {r['model']} | {r['params']:,} | "
            f"{_pct(r['best_val_accuracy'])} | {_pct(r['public_test_accuracy'])} | "
            f"{r['epochs']} | {r['train_minutes']} | {r['hardware']} |"
        )
    best = max(rows, key=lambda r: r["best_val_accuracy"] or 0)
    sentence = ""
    if len(rows) > 1:
        rest = [r for r in rows if r is not best]
        runner = max(rest, key=lambda r: r["best_val_accuracy"] or 0)
        gap = (best["best_val_accuracy"] or 0) - (runner["best_val_accuracy"] or 0)
        sentence = (
            f"{best['run']} ({best['model']}) is best on validation, "
            f"{gap * 100:.1f} points above {runner['run']} ({runner['model']})."
        )
    text = "\n".join(table) + "\n" + (f"\n{sentence}\n" if sentence else "")
    text += f"\n{split_text}\n"
    write_text_atomic(out / "compare.md", text)
    summary = {
        "runs": [{k: v for k, v in r.items() if k != "history"} for r in rows],
        "best": best["run"],
        "sentence": sentence,
        "validation_split": split_text,
    }
    write_text_atomic(out / "compare.json", json.dumps(summary, indent=1) + "\n")
    return summary | {"markdown": text}


def _pct(x) -> str:
    return f"{x:.1%}" if x is not None else "n/a"
