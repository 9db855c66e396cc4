"""`ferlab report`: train (or reuse) the study's CNN and DNN, evaluate and explain them, and
write the study as one self-contained HTML file and a Markdown twin.

Each stage leaves its results in DIR/state/<stage>.json once it is finished, so running the
same command again after an interruption redoes only what was not finished; an interrupted
training run is resumed from its last checkpoint.
"""

import hashlib
import json
import platform
import shlex
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import ferlab
from ferlab.checkpoint import load_model
from ferlab.data import EMOTIONS, RAW, load
from ferlab.data.splits import common_split
from ferlab.errors import FerlabError
from ferlab.io import write_text_atomic
from ferlab.models import create, keras_param_counts, list_models, summary_rows
from ferlab.models.base import conv_layers, explainable_layers

QUICK_MINUTES = 9.0  # training budget of --quick, both networks together
FULL_MINUTES = 120.0
CNN_SHARE = 0.7  # of the training budget; the DNN gets the rest
# The CNN trains with the flagship recipe's choices (random 44x44 crops only for the GAP models
# that accept them); the DNN with the plain settings the study used.
CNN_SETTINGS = {"augment": "standard", "label_smoothing": 0.1, "lr": 3e-3}
GAP_MODELS = ("cnn-baseline", "resnet-fer")
DNN_SETTINGS = {"augment": "standard", "lr": 1e-3}
STAGES = {
    "train-cnn": "train the CNN",
    "train-dnn": "train the DNN",
    "evaluate": "evaluate both on the saved validation split and PublicTest",
    "explain": "saliency maps, filter activations and gradient-ascent filter images",
    "write": "write report.html and report.md",
}


class Interrupted(Exception):
    """Training was interrupted; the run folder is resumable."""


@dataclass
class ReportConfig:
    data: str
    out: str
    quick: bool = False
    cnn: str = "cnn-baseline"
    dnn: str = "dnn-seed"
    minutes: float | None = None  # training budget for both networks together
    reuse: list[str] = field(default_factory=list)
    seed: int = 0
    layer: str | None = None  # conv-stage layer to explain; default: a middle activation
    cnn_args: dict = field(default_factory=dict)  # model arguments (tests build tiny ones)
    dnn_args: dict = field(default_factory=dict)
    quiet: bool = False

    @property
    def budget(self) -> float:
        return self.minutes or (QUICK_MINUTES if self.quick else FULL_MINUTES)

    @property
    def filter_steps(self) -> int:
        return 60 if self.quick else 200

    @property
    def saliency_sample(self) -> int:
        return 140 if self.quick else 700

    def command(self) -> str:
        parts = ["ferlab", "report", "--data", self.data, "--out", self.out]
        if self.quick:
            parts.append("--quick")
        parts += ["--cnn", self.cnn, "--dnn", self.dnn, "--minutes", f"{self.budget:g}"]
        parts += ["--seed", str(self.seed)]
        if self.layer:
            parts += ["--layer", self.layer]
        for run in self.reuse:
            parts += ["--reuse", run]
        return shlex.join(parts)


# ----------------------------------------------------------------------------- progress
class Progress:
    """Prints which stage runs, its estimate and the time left in all (estimates shrink to
    the measured time once a stage is done)."""

    def __init__(self, console, estimates: dict[str, float]):
        self.console, self.estimates = console, dict(estimates)
        self.start = time.monotonic()

    def left(self, names) -> float:
        return sum(self.estimates[n] for n in names)

    @contextmanager
    def stage(self, name: str, detail: str = ""):
        names = list(self.estimates)
        i = names.index(name)
        self.console.print(
            f"[bold]\\[{i + 1}/{len(names)}] {STAGES[name]}[/bold]"
            + (f" ({detail})" if detail else "")
            + f": about {_minutes(self.estimates[name])} for this stage,"
            f" {_minutes(self.left(names[i:]))} left in all"
        )
        t0 = time.monotonic()
        yield
        self.estimates[name] = 0.0
        self.console.print(f"    done in {_minutes(time.monotonic() - t0)}")

    def skip(self, name: str, why: str) -> None:
        self.estimates[name] = 0.0
        self.console.print(f"    {STAGES[name]}: {why}")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# ----------------------------------------------------------------------------- state
def _state(out: Path, stage: str) -> dict | None:
    path = out / "state" / f"{stage}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _save_state(out: Path, stage: str, value: dict) -> dict:
    write_text_atomic(out / "state" / f"{stage}.json", json.dumps(value, indent=1) + "\n")
    return value


def _check_options(cfg: ReportConfig, out: Path) -> None:
    """A folder holds one report: rerunning resumes it, other options would mix two."""
    path = out / "report-config.json"
    # The folder may have moved since (out), and progress bars change no result (quiet).
    mine = {k: v for k, v in asdict(cfg).items() if k not in ("out", "quiet")}
    if path.is_file():
        theirs = json.loads(path.read_text())
        if theirs != mine:
            diff = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise FerlabError(
                f"{out}: holds a report built with other options ({', '.join(diff)});"
                " choose a new --out or remove the folder"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise FerlabError(f"{out}: exists, is not empty and holds no ferlab report")
    write_text_atomic(path, json.dumps(mine, indent=1) + "\n")


# ----------------------------------------------------------------------------- training
def run_role(run: Path) -> str:
    """'cnn' or 'dnn': whether a finished run's model has convolutions."""
    from ferlab.training import TrainConfig

    config = run / "config.yaml"
    if not (run / "metrics.json").is_file() or not config.is_file():
        raise FerlabError(f"{run}: not a finished ferlab run (no config.yaml and metrics.json)")
    c = TrainConfig.from_yaml(config)
    return "cnn" if conv_layers(create(c.model, **c.model_args)) else "dnn"


def _finished(run: Path) -> bool:
    m = run / "metrics.json"
    return m.is_file() and json.loads(m.read_text()).get("stopped_by") != "interrupt"


def _train(role: str, cfg: ReportConfig, run: Path, minutes: float, n_train: int, split) -> dict:
    from ferlab.training import TrainConfig, train
    from ferlab.training.speed import plan_epochs, train_images_per_second

    if (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file():
        saved = TrainConfig.from_yaml(run / "config.yaml")
        result = train(
            TrainConfig(data=cfg.data, out=str(run), minutes=saved.minutes, quiet=cfg.quiet),
            resume=True,
        )
    else:
        model = cfg.cnn if role == "cnn" else cfg.dnn
        args = cfg.cnn_args if role == "cnn" else cfg.dnn_args
        settings = dict(CNN_SETTINGS if role == "cnn" else DNN_SETTINGS)
        if role == "cnn" and model in GAP_MODELS:
            settings["crop"] = 44
        img_s = train_images_per_second(model, args, side=settings.get("crop") or 48)
        epochs, fraction = plan_epochs(img_s, n_train, minutes)
        tc = TrainConfig(
            data=cfg.data,
            out=str(run),
            model=model,
            model_args=args,
            epochs=epochs,
            train_fraction=round(fraction, 3),
            # A guard only: the planned epochs should end first.
            minutes=round(minutes * 1.25, 2),
            seed=cfg.seed,
            split_file=str(split) if split else None,
            quiet=cfg.quiet,
            **settings,
        )
        result = train(tc, force=(run / "config.yaml").is_file())
    if result.stopped_by == "interrupt":
        raise Interrupted(str(run))
    return {"run": str(run), "stopped_by": result.stopped_by}


def train_command(run: Path) -> str:
    """The `ferlab train` command that reproduces a run from its saved config."""
    from ferlab.training import TrainConfig

    c = TrainConfig.from_yaml(run / "config.yaml")
    defaults = TrainConfig(data="", out="")
    parts = ["ferlab", "train", "--data", c.data, "--out", str(run), "--model", c.model]
    flags = {
        "epochs": "--epochs",
        "minutes": "--minutes",
        "batch_size": "--batch-size",
        "lr": "--lr",
        "weight_decay": "--weight-decay",
        "optimizer": "--optimizer",
        "schedule": "--schedule",
        "val_fraction": "--val-fraction",
        "seed": "--seed",
        "augment": "--augment",
        "crop": "--crop",
        "label_smoothing": "--label-smoothing",
    }
    for key, flag in flags.items():
        value = getattr(c, key)
        if value != getattr(defaults, key) or key in ("epochs", "seed"):
            parts += [flag, str(value)]
    if c.split_file:
        parts += ["--split", c.split_file]
    note = []
    if c.train_fraction < 1:
        note.append(f"train_fraction={c.train_fraction}")
    if c.model_args:
        note.append(f"model_args={json.dumps(c.model_args)}")
    text = shlex.join(parts)
    return text + (f"  # set in config.yaml: {', '.join(note)}" if note else "")


# ----------------------------------------------------------------------------- stages
def _structure(model: str, args: dict) -> dict:
    net = create(model, **args)
    counts = keras_param_counts(net)
    return {
        "model": model,
        "total": counts.total,
        "trainable": counts.trainable,
        "non_trainable": counts.non_trainable,
        "rows": [
            {"name": r.name, "kind": r.kind, "shape": str(r.output_shape), "params": r.params}
            for r in summary_rows(net)
        ],
    }


def _evaluate(runs: dict[str, Path], data: str, figures: Path, splits: list[str]) -> dict:
    from ferlab.evaluation import evaluate, select_split, write_evaluation

    result = {}
    for role, run in runs.items():
        loaded = load_model(run)
        entry = {}
        for split in ["val"] + (["PublicTest"] if "PublicTest" in splits else []):
            ev = evaluate(loaded, select_split(loaded, data, split), name=role, split=split)
            entry[split] = {
                "n": ev.report["n"],
                "accuracy": ev.report["accuracy"],
                "majority_accuracy": ev.report["majority_accuracy"],
                "macro_f1": ev.report["macro_f1"],
            }
            if role == "cnn" and split == "val":
                files = write_evaluation(ev, figures.parent / "evaluate" / "cnn-val")
                shutil.copyfile(files["confusion"], figures / "confusion.png")
                result["confusion"] = np.round(ev.normalized, 4).tolist()
                result["most_confused"] = json.loads(files["most_confused_json"].read_text())
        result[role] = entry
    result["comparison"] = _comparison_sentence(result)
    return result


def _comparison_sentence(result: dict) -> str:
    c, d = result["cnn"]["val"]["accuracy"], result["dnn"]["val"]["accuracy"]
    better, worse = ("CNN", "DNN") if c >= d else ("DNN", "CNN")
    sentence = (
        f"The {better} is better: {max(c, d):.1%} validation accuracy against {min(c, d):.1%} "
        f"for the {worse}, {abs(c - d) * 100:.1f} points"
    )
    if "PublicTest" in result["cnn"]:
        cp, dp = result["cnn"]["PublicTest"]["accuracy"], result["dnn"]["PublicTest"]["accuracy"]
        sentence += f" ({abs(cp - dp) * 100:.1f} points on PublicTest: {cp:.1%} vs {dp:.1%})"
    return sentence + "."


def default_layer(model) -> str:
    acts = [
        n for n, m in explainable_layers(model).items() if m.__class__.__name__.endswith("ReLU")
    ]
    if not acts:
        raise FerlabError("the CNN has no activation layer to explain")
    return acts[max(0, len(acts) // 2 - 1)]


def _explain(cfg: ReportConfig, cnn_run: Path, figures: Path, val_id: str) -> dict:
    from ferlab.explain.run import activations_report, filters_report, saliency_report

    loaded = load_model(cnn_run)
    layer = cfg.layer or default_layer(loaded.model)
    work = figures.parent / "explain"
    saliency_report(
        cnn_run, cfg.data, None, 1, None, "gradient", "predicted", cfg.saliency_sample, work
    )
    activations_report(cnn_run, layer, val_id, cfg.data, work)
    _, seconds = filters_report(cnn_run, layer, "all", cfg.filter_steps, work)
    for name in ("saliency.png", "class_average.png", "activations.png", "filters.png"):
        if (work / name).is_file():
            shutil.copyfile(work / name, figures / name)
    saliency = json.loads((work / "saliency.json").read_text())
    filters = json.loads((work / "filters.json").read_text())
    return {
        "layer": layer,
        "face": val_id,
        "saliency_method": saliency["method"],
        "saliency_faces": len(saliency["faces"]),
        "filters": len(filters["filters"]),
        "filter_steps": filters["steps"],
        "filter_seconds": round(seconds, 1),
        "filters_raised": int(
            sum(f > i for f, i in zip(filters["final"], filters["initial"], strict=True))
        ),
    }


def _plot_curves(runs: dict[str, Path], figures: Path) -> None:
    from ferlab.plots import plot_curves
    from ferlab.training import read_history

    histories = {role: read_history(run) for role, run in runs.items()}
    for role, history in histories.items():
        plot_curves({role: history}, figures / f"{role}_curves.png", f"{role}: training record")
    plot_curves(histories, figures / "compare_curves.png", "CNN and DNN: training records")


def _environment() -> dict:
    import lightning
    import torch

    return {
        "ferlab": ferlab.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


# ----------------------------------------------------------------------------- main
def build_report(cfg: ReportConfig, console=None) -> Path:
    """Run (or resume) every stage and return DIR/report.html."""
    from rich.console import Console

    from ferlab.training.config import TrainConfig

    console = console or Console(stderr=True)
    for name, role in ((cfg.cnn, "--cnn"), (cfg.dnn, "--dnn")):
        if name not in list_models():
            raise FerlabError(f"{role}: unknown model '{name}'; see `ferlab models`")
    if not Path(cfg.data).exists():
        raise FerlabError(f"{cfg.data}: no such file or folder")
    reused = {}
    for r in cfg.reuse:
        role = run_role(Path(r))
        if role in reused:
            raise FerlabError(f"--reuse: two {role.upper()} runs given ({reused[role]}, {r})")
        reused[role] = Path(r)
    out = Path(cfg.out)
    faces, fingerprint = load(cfg.data, preprocess=RAW)  # fails early on unreadable data
    if "Training" not in faces.split_names:
        raise FerlabError(f"{cfg.data}: no Training split to train on")
    _check_options(cfg, out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    previous = _state(out, "timing") or {"seconds": 0.0, "sessions": 0}

    n_train = round(int((faces.splits == "Training").sum()) * (1 - TrainConfig.val_fraction))
    budget = cfg.budget * 60
    progress = Progress(
        console,
        {
            "train-cnn": 0 if "cnn" in reused else budget * CNN_SHARE,
            "train-dnn": 0 if "dnn" in reused else budget * (1 - CNN_SHARE),
            "evaluate": 30 + len(faces) / 300,
            "explain": 60 if cfg.quick else 180,
            "write": 5,
        },
    )
    runs = {
        "cnn": reused.get("cnn", out / "runs" / "cnn"),
        "dnn": reused.get("dnn", out / "runs" / "dnn"),
    }
    for role in ("cnn", "dnn"):
        stage = f"train-{role}"
        if role in reused:
            progress.skip(stage, f"reusing {runs[role]}")
        elif _finished(runs[role]):
            progress.skip(stage, f"already done ({runs[role]})")
        else:
            minutes = cfg.budget * (CNN_SHARE if role == "cnn" else 1 - CNN_SHARE)
            split = runs["cnn"] / "split.json" if role == "dnn" else None
            model = cfg.cnn if role == "cnn" else cfg.dnn
            with progress.stage(stage, f"{model}, budget {minutes:.1f} min"):
                _train(role, cfg, runs[role], minutes, n_train, split)
    # Reused runs must have been selected on one split, carved from these very faces.
    split = common_split([runs["cnn"], runs["dnn"]])
    if split is not None:
        split.check_data(faces.split("Training"))
    shutil.copyfile(runs["cnn"] / "split.json", out / "split.json")

    evaluation = _state(out, "evaluate")
    if evaluation:
        progress.skip("evaluate", "already done")
    else:
        with progress.stage("evaluate"):
            evaluation = _save_state(
                out, "evaluate", _evaluate(runs, cfg.data, figures, faces.split_names)
            )

    explanation = _state(out, "explain")
    if explanation:
        progress.skip("explain", "already done")
    else:
        val_ids = json.loads((out / "split.json").read_text())["ids"]
        with progress.stage("explain"):
            explanation = _save_state(
                out, "explain", _explain(cfg, runs["cnn"], figures, val_ids[0])
            )

    with progress.stage("write"):
        _plot_curves(runs, figures)
        timing = {
            "seconds": round(previous["seconds"] + time.monotonic() - started, 1),
            "sessions": previous["sessions"] + 1,
        }
        _save_state(out, "timing", timing)
        context = _context(cfg, runs, fingerprint, evaluation, explanation, timing)
        from ferlab.report.render import render

        html = render(context, out, figures)
    console.print(f"wrote {html} and {out / 'report.md'} in {_minutes(time.monotonic() - started)}")
    return html


def _context(cfg, runs, fingerprint, evaluation, explanation, timing) -> dict:
    from ferlab.training import TrainConfig

    split_file = Path(cfg.out) / "split.json"
    split = json.loads(split_file.read_text())
    roles = {}
    for role, run in runs.items():
        c = TrainConfig.from_yaml(run / "config.yaml")
        metrics = json.loads((run / "metrics.json").read_text())
        roles[role] = {
            "run": str(run),
            "structure": _structure(c.model, c.model_args),
            "metrics": metrics,
            "evaluation": evaluation[role],
            "config": asdict(c),
            "command": train_command(run),
        }
    return {
        "title": "FER2013: a CNN against a deep dense network" + (" (quick)" if cfg.quick else ""),
        "config": asdict(cfg),
        "command": cfg.command(),
        "roles": roles,
        "labels": list(EMOTIONS),
        "evaluation": evaluation,
        "explanation": explanation,
        "environment": _environment(),
        "fingerprint": fingerprint,
        "split": {
            "file": "split.json",
            "n": len(split["ids"]),
            "sha256": hashlib.sha256(split_file.read_bytes()).hexdigest(),
            "seed": split.get("seed"),
            "fraction": split.get("fraction"),
        },
        "timing": timing,
    }
