"""Where a training step of the flagship recipe spends its time on this CPU, and what buys
more epochs per CPU-hour: eager fp32 + channels_last against torch.compile
(inductor's CPU code generation), larger batches, and the cost of what surrounds the model
step: the loader, the kornia augmentation, mixup and the EMA update.

Usage: python benchmarks/train_step.py [RECIPE]   (default flagship@2; nothing else running)
Writes benchmarks/results/train_step.json and the section "Training step of RECIPE" of
benchmarks/results/train_speed.md.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset

from ferlab.models import create
from ferlab.training import TrainConfig, recipe_settings
from ferlab.training.augment import build_augment
from ferlab.training.module import EpochSampler

TRAIN_FACES = 25_837  # FER2013 Training minus the 10% validation split
RESULTS = Path(__file__).parent / "results"


def median_seconds(fn, budget_s: float, max_runs: int = 30) -> tuple[float, int]:
    fn()  # the first call allocates and picks kernels
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < budget_s and len(times) < max_runs:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2], len(times)


def model_step(cfg: TrainConfig, batch: int, compiled: bool, budget_s: float) -> dict:
    """Forward + backward + SGD/AdamW step on random faces of the trained input size."""
    torch.manual_seed(0)
    side = cfg.crop or 48
    net = create(cfg.model, **cfg.model_args).to(memory_format=torch.channels_last).train()
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    forward = torch.compile(net) if compiled else net
    x = torch.rand(batch, 1, side, side).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y, label_smoothing=cfg.label_smoothing).backward()
        opt.step()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start  # includes compilation when compiled
    seconds, runs = median_seconds(step, budget_s)
    return {
        "img_s": round(batch / seconds, 1),
        "ms_per_128": round(seconds / batch * 128 * 1000, 1),
        "first_step_s": round(first, 1),
        "steps": runs,
    }


def around_the_step(cfg: TrainConfig, budget_s: float) -> dict:
    """Milliseconds per batch of 128 for each stage that is not the model step."""
    n, batch = TRAIN_FACES, cfg.batch_size
    g = torch.Generator().manual_seed(0)
    faces = torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 7, (n,), generator=g)
    loader = DataLoader(TensorDataset(faces, labels), batch, sampler=EpochSampler(n, 0))
    batches = iter(loader)

    def load():
        nonlocal batches
        try:
            next(batches)
        except StopIteration:
            batches = iter(loader)
            next(batches)

    augment = build_augment(cfg.augment, cfg.crop)
    images = faces[:batch]

    def augmented():
        return augment(images.float().div(255).unsqueeze(1))

    x = augmented()

    def mixup():
        share = float(torch.distributions.Beta(0.2, 0.2).sample())
        partner = torch.randperm(len(x))
        return x.mul(share).add_(x[partner], alpha=1 - share)

    net = create(cfg.model, **cfg.model_args)
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    stages = {
        "loader": load,
        f"augment ({cfg.augment}, crop {cfg.crop or 'none'})": augmented,
        "mixup": mixup,
        "EMA update": lambda: ema.update_parameters(net),
    }
    out = {}
    for name, fn in stages.items():
        seconds, _ = median_seconds(fn, budget_s)
        out[name] = round(seconds * 1000 * 128 / batch, 2)
    return out


def main(recipe: str = "flagship@2", budget_s: float = 15.0) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = TrainConfig(**recipe_settings(recipe))
    b = cfg.batch_size
    variants = {
        f"eager, batch {b}": (b, False),
        f"torch.compile, batch {b}": (b, True),
        f"eager, batch {2 * b}": (2 * b, False),
        f"eager, batch {4 * b}": (4 * b, False),
    }
    steps = {}
    for name, (batch, compiled) in variants.items():
        steps[name] = model_step(cfg, batch, compiled, budget_s)
        print(name, steps[name], flush=True)
    around = around_the_step(cfg, budget_s)
    print(around, flush=True)
    eager = steps[f"eager, batch {b}"]["ms_per_128"]
    out = {
        "command": f"python benchmarks/train_step.py {recipe}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "recipe": recipe,
        "model": f"{cfg.model} {cfg.model_args}, input {cfg.crop or 48}x{cfg.crop or 48}",
        "model_step": steps,
        "around_the_step_ms_per_128": around,
        "eager_step_ms_per_128": eager,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_step.json").write_text(json.dumps(out, indent=1) + "\n")
    total = eager + sum(around.values())
    lines = [
        f"`{out['command']}` on the idle CPU ({out['machine']}); {out['model']}, fp32 + "
        "channels_last; median of repeated steps on random faces.",
        "",
        "| model step | img/s | ms per 128 faces | vs eager | first step s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in steps.items():
        lines.append(
            f"| {name} | {r['img_s']} | {r['ms_per_128']} | {eager / r['ms_per_128']:.2f}x "
            f"| {r['first_step_s']} |"
        )
    lines += [
        "",
        f"Around the step, per 128 faces (the eager step takes {eager:.0f} ms):",
        "",
        "| stage | ms per 128 faces | share of a step with all of them |",
        "| --- | ---: | ---: |",
    ]
    for name, ms in around.items():
        lines.append(f"| {name} | {ms} | {100 * ms / total:.1f}% |")
    lines.append(
        f"\nA FER2013 epoch ({TRAIN_FACES} faces) at the eager step plus all of the above: "
        f"{TRAIN_FACES / 128 * total / 1000:.0f} s, before validation."
    )
    write_section(RESULTS / "train_speed.md", f"Training step of {recipe}", lines)


def write_section(path: Path, title: str, lines: list[str]) -> None:
    """Replace (or append) the section `## title` of a Markdown file, keeping the rest."""
    text = path.read_text() if path.is_file() else ""
    head, marker, rest = text.partition(f"\n## {title}\n")
    tail = rest[rest.find("\n## ") :] if marker and "\n## " in rest else ""
    body = "\n".join([f"## {title}", "", *lines]) + "\n"
    path.write_text(head.rstrip("\n") + "\n\n" + body + tail)


if __name__ == "__main__":
    main(*sys.argv[1:2])
