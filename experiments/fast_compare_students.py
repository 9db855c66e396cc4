"""Candidate networks for the `fast` tier: accuracy in equal short distillations, and speed
through ONNX Runtime.

    .venv/bin/python experiments/fast_compare_students.py train DATA ROOT NAME...  # ROOT/NAME runs
    .venv/bin/python experiments/fast_compare_students.py speed                    # idle CPU only
    .venv/bin/python experiments/fast_compare_students.py write ROOT

Every candidate is recipe fast@1 (distilled from the shipped `default`) cut to SHORT with only
the network changed, trained from the same seed on the same duplicate-free split. `speed`
times each network's ONNX graph on random weights at batch 64 with 2 threads (the number the
target is in); `write` joins both with the validation accuracy of each finished run
(raw weights and EMA, the last epoch; no test split is read: nothing here is shipped) into
compare_students.json and compare_students.md beside this script.
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ferlab.models import create
from ferlab.runs import RunFolder
from ferlab.runtime import onnx_graph, session
from ferlab.training import TrainConfig, recipe_settings, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from timing import items_per_second  # noqa: E402  (benchmarks/ is not a package)

HERE = Path(__file__).resolve().parents[1] / "results" / "fast"  # its records
BASE = "fast@1"
SHORT = dict(epochs=6, warmup_epochs=1)
CANDIDATES = {  # run folder: (what it is, model, model_args)
    "cnn-small": (
        "cnn-small (fast@1's network): 16x2 @44, 32x2 @22, 64x2 @11, 128x2 @5",
        "cnn-small",
        {"dropout": 0.1},
    ),
    "stem16": (
        "stride-2 stem 16, then 32x2 @22, 64x2 @11, 128x2 @5",
        "cnn-fast",
        {"stem": 16, "stages": [[32, 32], [64, 64], [128, 128]], "separable": False},
    ),
    "stem32-pool": (
        "stride-2 stem 32, pool, 64x2 @11, 128x2 @5",
        "cnn-fast",
        {"stages": [[], [64, 64], [128, 128]], "separable": False},
    ),
    "stem32-deep": (
        "stride-2 stem 32, 32 @22, 64 @11, 128 @5, 256 @2",
        "cnn-fast",
        {"stages": [[32], [64], [128], [256]], "separable": False},
    ),
    "separable": (
        "stride-2 stem 32, separable 48x2 @22, 96x2 @11, 192x2 @5",
        "cnn-fast",
        {"stages": [[48, 48], [96, 96], [192, 192]], "separable": True, "dropout": 0.1},
    ),
}
THREADS, BATCH = 2, 64


def candidate_config(slug: str, data: str, root: Path) -> TrainConfig:
    base = TrainConfig(**recipe_settings(BASE))
    _, model, model_args = CANDIDATES[slug]
    return replace(
        base, data=data, out=str(root / slug), quiet=True, model=model, model_args=model_args,
        **SHORT,
    )  # fmt: skip


def multiply_accumulates(model: torch.nn.Module) -> int:
    """Per 48x48 face, convolutions and the classifier (what dominates; BN folds into convs)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.rand(1, 1, 48, 48))
    for h in hooks:
        h.remove()
    return total


def faces_per_second(model: torch.nn.Module, seconds: float = 3.0) -> float:
    """ONNX Runtime, batch BATCH, THREADS threads, median of three timed rounds."""
    torch.set_num_threads(THREADS)
    runner = session(onnx_graph(model).SerializeToString())
    name = runner.get_inputs()[0].name
    faces = np.random.default_rng(0).random((BATCH, 1, 48, 48), dtype=np.float32)

    def run():
        runner.run(None, {name: faces})

    rates = [items_per_second(run, BATCH, seconds, warmup=5 if i == 0 else 0) for i in range(3)]
    return float(np.median(rates))


def speed() -> dict:
    out = {}
    for slug, (_, model, model_args) in CANDIDATES.items():
        net = create(model, input_crop=44, **model_args)
        out[slug] = {
            "params": sum(p.numel() for p in net.parameters()),
            "macs": multiply_accumulates(net),
            "faces_s": round(faces_per_second(net)),
        }
        print(slug, out[slug], flush=True)
    record = {"command": "python experiments/fast_compare_students.py speed", "speed": out}
    record["threads"], record["batch"] = THREADS, BATCH
    (HERE / "student_speed.json").write_text(json.dumps(record, indent=1) + "\n")
    return out


def write(root: Path) -> None:
    measured = json.loads((HERE / "student_speed.json").read_text())["speed"]
    reference = measured["cnn-small"]["faces_s"]
    rows = []
    for slug, (name, model, model_args) in CANDIDATES.items():
        run = RunFolder(root / slug)
        if not run.finished():
            continue
        history = run.read_history()
        rows.append(
            {
                "candidate": name,
                "run": slug,
                "model": model,
                "model_args": model_args,
                "minutes": round(sum(history["epoch_seconds"]) / 60, 1),
                "val_raw": round(history["val_acc_raw"][-1], 4),
                "val_ema": round(history["val_acc"][-1], 4),
                **measured[slug],
                "speed_vs_cnn_small": round(measured[slug]["faces_s"] / reference, 2),
            }
        )
    record = {
        "command": "python experiments/fast_compare_students.py write ROOT",
        "base": BASE,
        "short": SHORT,
        "rows": rows,
    }
    (HERE / "compare_students.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"| candidate ({BASE} for {SHORT['epochs']} epochs, the network changed) | params "
        "| MACs per face | faces/s, ONNX, batch 64 | vs cnn-small | val (raw) | val (EMA) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['candidate']} | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.1f}M "
            f"| {r['faces_s']:,} | {r['speed_vs_cnn_small']:.2f}x "
            f"| {100 * r['val_raw']:.1f}% | {100 * r['val_ema']:.1f}% |"
        )
    (HERE / "compare_students.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(command: str, *args: str) -> None:
    if command == "train":
        data, root, *slugs = args
        for slug in slugs or list(CANDIDATES):
            train(candidate_config(slug, data, Path(root)))
    elif command == "speed":
        speed()
    else:
        write(Path(args[0]))


if __name__ == "__main__":
    main(*sys.argv[1:])
