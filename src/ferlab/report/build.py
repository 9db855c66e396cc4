"""The report's pipeline (`ferlab report`): the study in one call, built on library calls.

It trains (or reuses) the study's CNN, its 51-layer DNN and a shallow dense control of the
same size, evaluates them, explains a CNN and writes report.md and report.html. Faces are read
once and every model is loaded once; figures are drawn from arrays in memory.

The work is fixed, not timed: `--quick` trains a fixed share of each packaged recipe's epochs,
so the same command gives the same numbers on a fast or a busy machine (`--minutes` turns the
plan into a time budget instead, and the report says so). A quick CNN cannot show what a fully
trained one does, so the quick report explains the shipped `default` (labelled as such); the
full report explains its own CNN. Training runs are resumable: rerunning the command after an
interruption continues them, and finished runs are not trained again.
"""

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ferlab.atomic import write_bytes_atomic, write_text_atomic
from ferlab.data import EMOTIONS, RAW, FaceSet, load
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate
from ferlab.evaluation.evaluate import CONFUSED_THRESHOLD
from ferlab.evaluation.metrics import most_confused
from ferlab.explain.gradients import gradient_norms
from ferlab.explain.panels import (
    check_layer,
    class_saliency,
    layer_activations,
    layer_filter_images,
    model_labels,
    pick_per_class,
    saliency_panel,
    trust_check,
)
from ferlab.inference import Predictor, load_model, validation_split_of
from ferlab.models import list_models, model_config
from ferlab.report.plan import ROLES, ReportConfig, training_plan
from ferlab.report.study import comparison, structure, summary
from ferlab.runs import RunFolder, common_split, environment
from ferlab.training import TrainConfig, train
from ferlab.training.config import reproduction

SALIENCY_SAMPLE = {True: 140, False: 700}  # faces averaged per class map: quick, full
TRUST_FACES = {True: (40, 8), False: (200, 50)}  # faces checked, of them in the cascade
FILTER_STEPS = {True: 60, False: 200}


class Interrupted(Exception):
    """Training was interrupted; the run folder is resumable."""


# ----------------------------------------------------------------------------- the stages
@dataclass
class Stages:
    console: object
    names: list[str]
    start: float = field(default_factory=time.monotonic)

    @contextmanager
    def stage(self, name: str, detail: str = ""):
        i = self.names.index(name) + 1
        self.console.print(f"[{i}/{len(self.names)}] {name}" + (f" ({detail})" if detail else ""))
        t0 = time.monotonic()
        yield
        self.console.print(f"    done in {_minutes(time.monotonic() - t0)}")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _check_options(cfg: ReportConfig, out: Path) -> None:
    """A folder holds one report: rerunning resumes it, other options would mix two."""
    path = out / "report-config.json"
    # The folder may have moved since (out), and progress output changes no result (quiet).
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


def _reused(cfg: ReportConfig) -> dict[str, RunFolder]:
    """--reuse ROLE=RUN, or RUN alone: a CNN if its model has conv layers, else the DNN."""
    reused = {}
    for item in cfg.reuse:
        role, sep, path = item.partition("=")
        if not sep:
            role, path = None, item
        elif role not in ROLES:
            raise FerlabError(f"--reuse {item}: role must be one of {', '.join(ROLES)}")
        run = RunFolder(Path(path))
        if not run.finished() or not run.is_run():
            raise FerlabError(
                f"{run.path}: not a finished ferlab run (no config.yaml and metrics.json)"
            )
        if role is None:
            c = TrainConfig.from_yaml(run.config)
            role = "cnn" if model_config(c.model, **c.model_args).convolutional else "dnn"
        if role in reused:
            raise FerlabError(f"--reuse: two {role} runs given ({reused[role].path}, {run.path})")
        reused[role] = run
    return reused


def _train(tc: TrainConfig) -> None:
    run = RunFolder(Path(tc.out))
    # An interrupted run continues; one that failed before its first epoch starts again.
    result = train(tc, resume=True) if run.resumable() else train(tc, force=run.is_run())
    if result.stopped_by == "interrupt":
        raise Interrupted(str(run.path))


def build_report(cfg: ReportConfig, console=None) -> Path:
    """Train what is not trained yet, then evaluate, explain and write DIR/report.html."""
    from rich.console import Console

    console = console or Console(stderr=True)
    for role in ROLES:
        name = cfg.model(role)[0]
        if name not in list_models():
            raise FerlabError(f"--{role}: unknown model '{name}'; see `ferlab models`")
    if not Path(cfg.data).exists():
        raise FerlabError(f"{cfg.data}: no such file or folder")
    reused = _reused(cfg)
    out = Path(cfg.out)
    raw, fingerprint = load(cfg.data, preprocess=RAW)  # once; fails early on unreadable data
    if "Training" not in raw.split_names:
        raise FerlabError(f"{cfg.data}: no Training split to train on")
    _check_options(cfg, out)
    started = time.monotonic()
    n_train = round(int((raw.splits == "Training").sum()) * (1 - TrainConfig.val_fraction))
    plan = training_plan(cfg, n_train)
    stages = Stages(
        console, [f"train {ROLES[r]}" for r in ROLES] + ["evaluate", "explain", "write"]
    )
    runs, trained_here = {}, []
    for role, tc in plan.items():
        stage = f"train {ROLES[role]}"
        if role in reused:
            runs[role] = reused[role]
            console.print(f"    {stage}: reusing {reused[role].path}")
            continue
        runs[role] = RunFolder(Path(tc.out))
        if runs[role].finished():
            console.print(f"    {stage}: already done ({tc.out})")
            continue
        with stages.stage(stage, f"{tc.model}, {tc.epochs} epochs x {tc.train_fraction:.0%}"):
            _train(tc)
        trained_here.append(role)
    # Reused runs must have been selected on one split, carved from these very faces.
    split = common_split(list(runs.values()))
    if split is None:
        raise FerlabError(f"{runs['cnn'].path}: no saved validation split")
    split.check_data(raw.split("Training"))
    write_bytes_atomic(out / "split.json", runs["cnn"].split.read_bytes())
    train_faces, val = split.apply(raw)

    predictors = {role: load_model(run.path, runtime="torch") for role, run in runs.items()}
    splits = {"val": val} | (
        {"PublicTest": raw.split("PublicTest")} if "PublicTest" in raw.split_names else {}
    )
    with stages.stage("evaluate"):
        evaluation = {role: _scores(p, splits) for role, p in predictors.items()} | {
            "majority": _majority(val, raw)
        }
        evaluation["comparison"] = comparison(evaluation)
    figures = out / "figures"
    explained, explained_val, note = _explained(cfg, predictors["cnn"], raw, val)
    with stages.stage("explain", explained.card.model):
        explanation = _explain(cfg, explained, explained_val, figures)
        explanation["is_default"] = explained is not predictors["cnn"]
        explanation["default_note"] = note
        explanation["gradients"] = _gradients(cfg, predictors, runs, train_faces, figures)
    with stages.stage("write"):
        from ferlab.plots import plot_curves
        from ferlab.report.document import render_report

        histories = {role: run.read_history() for role, run in runs.items()}
        for role, history in histories.items():
            plot_curves(
                {role: history}, figures / f"{role}_curves.png", f"{ROLES[role]}: training record"
            )
        plot_curves(
            histories,
            figures / "compare_curves.png",
            "CNN, DNN and dense control: training records",
        )
        timing = {
            "seconds": round(time.monotonic() - started, 1),
            "resumed": len(trained_here) < len(ROLES),
        }
        context = _context(cfg, runs, predictors, fingerprint, evaluation, explanation, timing,
                           split)  # fmt: skip
        figures_json = summary(cfg.quick, cfg.minutes, evaluation)
        write_text_atomic(out / "summary.json", json.dumps(figures_json, indent=1) + "\n")
        html = render_report(context, out, figures)
    console.print(f"wrote {html} and {out / 'report.md'} in {_minutes(time.monotonic() - started)}")
    return html


def _scores(predictor: Predictor, splits: dict[str, FaceSet]) -> dict:
    result = {}
    for name, faces in splits.items():
        report = evaluate(predictor, faces, split=name).report
        result[name] = {k: report[k] for k in ("n", "accuracy", "majority_accuracy", "macro_f1")}
    return result


def _majority(val: FaceSet, raw: FaceSet) -> dict:
    from ferlab.evaluation.evaluate import majority_accuracy

    out = {"val": majority_accuracy(val.labels)}
    if "PublicTest" in raw.split_names:
        out["PublicTest"] = majority_accuracy(raw.split("PublicTest").labels)
    return out


def _explained(cfg: ReportConfig, cnn: Predictor, raw: FaceSet, val: FaceSet):
    """(model, its validation faces, why not the default) for sections 3 to 5: the shipped
    default on the split it was selected on, when asked for and these are its faces."""
    if not cfg.explains_default:
        return cnn, val, None
    default = load_model("default", runtime="torch")
    try:
        return default, validation_split_of(default).apply(raw)[1], None
    except FerlabError as e:
        return cnn, val, f"the shipped default was selected on other faces than these ({e})"


def _explain(cfg: ReportConfig, predictor: Predictor, own_val: FaceSet, figures: Path) -> dict:
    """Confusion, saliency and filter figures of the explained CNN, on the validation split
    it was selected on."""
    from ferlab.plots import (
        plot_activations,
        plot_class_saliency,
        plot_confusion,
        plot_filter_images,
        plot_saliency_panels,
    )
    from ferlab.report.study import confused_beside_study, filter_layer_note

    ev = evaluate(predictor, own_val, split="val")
    labels = ev.report["labels"]
    plot_confusion(
        ev.normalized,
        labels,
        figures / "confusion.png",
        f"validation split, n={ev.report['n']}, accuracy {ev.report['accuracy']:.1%}",
    )
    confused = most_confused(ev.normalized, labels, CONFUSED_THRESHOLD)

    trust = _trust(predictor, own_val, TRUST_FACES[cfg.quick], figures)
    labels = model_labels(own_val, predictor.classes)
    index = pick_per_class(labels, 1)
    panel = saliency_panel(
        predictor, own_val.images[index], labels[index], own_val.ids[index], trust["best"]
    )
    plot_saliency_panels(
        panel.faces, panel.maps, panel.masked, panel.titles, figures / "saliency.png", panel.method
    )
    sample = SALIENCY_SAMPLE[cfg.quick]
    averages, n = class_saliency(predictor, own_val.images, labels, panel.method, sample)
    names = list(predictor.classes)
    plot_class_saliency(averages, names, panel.method, n, figures / "class_average.png")

    layer = cfg.layer or predictor.model.config.filter_layer
    if layer is None:
        raise FerlabError("the explained CNN names no layer for its filters; give --layer")
    n_filters = check_layer(predictor, layer)
    face_id = str(own_val.ids[0])
    maps = layer_activations(predictor, own_val.images[0], layer)
    face = predictor.seen_images(own_val.images[:1])[0]
    plot_activations(face, maps, layer, face_id, figures / "activations.png")
    t0 = time.perf_counter()
    steps = FILTER_STEPS[cfg.quick]
    result = layer_filter_images(predictor, layer, steps=steps)
    seconds = time.perf_counter() - t0
    plot_filter_images(
        result.images, result.filters, result.final, layer, steps, figures / "filters.png"
    )
    card = predictor.card
    return {
        "model": card.model,
        "recipe": card.recipe,
        "train_hours": card.train_hours,
        "epochs": card.epochs,
        "evaluation": {k: ev.report[k] for k in ("n", "accuracy", "majority_accuracy", "macro_f1")},
        "most_confused": confused,
        "beside_study": confused_beside_study(confused),
        "saliency_method": panel.method,
        "saliency_faces": len(index),
        "trust": trust,
        "layer": layer,
        "layer_note": filter_layer_note(predictor.model, layer, n_filters),
        "face": face_id,
        "filters": len(result.filters),
        "filter_steps": steps,
        "filter_seconds": round(seconds, 1),
        "filters_raised": int((result.final > result.initial).sum()),
    }


def _trust(predictor: Predictor, val: FaceSet, sizes: tuple[int, int], figures: Path) -> dict:
    """Every saliency method's sanity checks on a seeded draw of validation faces, their
    figures, and a sentence per method read off its scores."""
    from ferlab.explain.trust import verdict
    from ferlab.plots import plot_trust

    report, _, seconds = trust_check(predictor, val, *sizes)
    result = report.to_dict() | {"seconds": seconds}
    plot_trust(result, report.cascades(), figures)
    random, edge = result["baselines"]["random"], result["baselines"]["edge"]
    result["verdicts"] = {
        name: verdict(name, m, random, edge) for name, m in result["methods"].items()
    }
    write_text_atomic(figures.parent / "trust.json", json.dumps(result, indent=1) + "\n")
    return result


def _gradients(
    cfg: ReportConfig,
    predictors: dict[str, Predictor],
    runs: dict[str, RunFolder],
    train_faces: FaceSet,
    figures: Path,
) -> dict:
    """Per-layer gradient norms of the two dense networks: untrained and trained on one batch
    of training faces, and during training where their runs recorded them."""
    from ferlab.plots import plot_gradient_history, plot_gradient_norms

    rng = np.random.default_rng(0)
    pick = rng.choice(len(train_faces), min(128, len(train_faces)), replace=False)
    series, spread = {}, {}
    for role in ("dnn", "control"):
        p = predictors[role]
        x = p.input_batch(train_faces.images[pick])
        y = torch.as_tensor(train_faces.labels[pick])
        torch.manual_seed(cfg.seed)
        for moment, model in (("untrained", p.card.build()), ("trained", p.model)):
            norms = gradient_norms(model, x, y)
            series[f"{ROLES[role].removeprefix('the ')} ({moment})"] = norms
            spread[f"{role}_{moment}"] = float(norms[0] / norms[-1])
    plot_gradient_norms(
        series,
        figures / "gradients.png",
        "gradient norm per layer, one batch of 128 training faces",
    )
    history = {
        ROLES[role].removeprefix("the "): runs[role].read_gradients()
        for role in ("dnn", "control")
        if runs[role].gradients.is_file()
    }
    if history:
        plot_gradient_history(history, figures / "gradient_history.png")
    return {"first_to_last": {k: round(v, 3) for k, v in spread.items()}}


def _context(cfg, runs, predictors, fingerprint, evaluation, explanation, timing, split) -> dict:
    from ferlab.report.study import params_beside_study, vgg_gap_sentence

    roles = {}
    for role, run in runs.items():
        c = TrainConfig.from_yaml(run.config)
        roles[role] = {
            "name": ROLES[role],
            "run": str(run.path),
            "structure": structure(predictors[role].model),
            "metrics": run.read_summary(),
            "evaluation": evaluation[role],
            "config": asdict(c),
            "recipe": c.recipe,
            "commands": reproduction(run.config, f"{run.path}-again"),
        }
    study_params = params_beside_study()
    split_bytes = runs["cnn"].split.read_bytes()  # what split.json was written from
    return {
        "title": "FER2013: a CNN against deep and shallow dense networks"
        + (" (quick)" if cfg.quick else ""),
        "config": asdict(cfg),
        "command": cfg.command(),
        "work": "time budget" if cfg.minutes else "fixed",
        "roles": roles,
        "labels": list(EMOTIONS),
        "evaluation": evaluation,
        "explanation": explanation,
        "study_params": study_params,
        "vgg_gap": vgg_gap_sentence(study_params),
        "environment": environment(),
        "fingerprint": fingerprint,
        "split": {
            "n": len(split.ids),
            "sha256": hashlib.sha256(split_bytes).hexdigest(),
            "seed": split.seed,
            "fraction": split.fraction,
        },
        "timing": timing,
    }
