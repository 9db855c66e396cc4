"""`train()`: one run folder holding everything a run produces, resumable, never overwritten."""

import json
import logging
import os
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from ferlab._version import __version__
from ferlab.atomic import FULL, disk_full, refuse_package_weights, write_text_atomic
from ferlab.data import Preprocess, ValidationSplit, carve_validation, load
from ferlab.data.votes import soft_targets as vote_targets_of
from ferlab.errors import FerlabError
from ferlab.evaluation import evaluate
from ferlab.inference import load_model, validation_split_of
from ferlab.models import list_models, model_config
from ferlab.models.card import ModelCard
from ferlab.plots import plot_curves
from ferlab.runs import RunFolder, environment
from ferlab.runtime import usable_cores
from ferlab.training.callbacks import (
    AtomicCheckpointIO,
    GradientNorms,
    HistoryWriter,
    RawValidation,
    WallClockBudget,
    sigterm_as_interrupt,
)
from ferlab.training.config import TrainConfig, changed_options
from ferlab.training.distill import check_held_out, check_teacher, teacher_log_probs
from ferlab.training.finetune import check_same_network, start_model
from ferlab.training.module import FERDataModule, FERModule


@dataclass
class RunResult:
    out: Path
    stopped_by: str  # epochs | budget | interrupt
    metrics: dict


def _is_child_process() -> bool:
    # Lightning's DDP launcher re-runs the command in child processes with LOCAL_RANK set.
    return os.environ.get("LOCAL_RANK", "0") != "0"


def prepare_run_dir(
    cfg: TrainConfig,
    resume: bool,
    force: bool,
    given: dict | None = None,
    extend_epochs: int = 0,
) -> TrainConfig:
    """Check the run folder. On --resume return the saved config, with the budget, quiet and
    data path of this call; any other option in `given` (those set on the command line) must
    equal the saved one. `extend_epochs` continues the schedule over that many more epochs."""
    out = Path(cfg.out)
    refuse_package_weights(out)
    run = RunFolder(out)
    config_file = run.config
    if extend_epochs and not resume:
        raise FerlabError("--extend-epochs continues a run: use it with --resume")
    if resume:
        if not run.resumable():
            raise FerlabError(
                f"{out}: nothing to resume (no config.yaml and checkpoints/last.ckpt)"
            )
        saved = TrainConfig.from_yaml(config_file)
        changed = changed_options(saved, given or {})
        if changed:
            what = "; ".join(f"{k}: {getattr(saved, k)!r} -> {given[k]!r}" for k in changed)
            raise FerlabError(
                f"{out}: --resume continues the run as it was configured; changed options "
                f"({what}) need a new run (--extend-epochs N trains longer)"
            )
        # The run may have moved (a fresh machine continues a committed campaign): it lives
        # where --out says now, and reads the data where --data says (checked by content).
        resumed = replace(
            saved, out=cfg.out, minutes=cfg.minutes, quiet=cfg.quiet, data=cfg.data or saved.data
        )
        if extend_epochs:
            if extend_epochs < 0:
                raise FerlabError(f"--extend-epochs must be positive, not {extend_epochs}")
            if saved.schedule == "onecycle":
                raise FerlabError(
                    f"{out}: a OneCycle schedule ends at its last epoch and cannot be extended "
                    "(runs with --schedule cosine or none can)"
                )
            # config.yaml records it once the data is checked (_train).
            resumed = replace(
                resumed,
                epochs=saved.epochs + extend_epochs,
                extended=saved.extended + extend_epochs,
            )
        return resumed
    if _is_child_process():
        return cfg
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FerlabError(
                f"{out}: run folder exists; use --resume to continue it or --force to replace it"
            )
        if not config_file.is_file():
            raise FerlabError(f"{out}: not a ferlab run folder (no config.yaml); not replacing it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return cfg


@contextmanager
def quiet_lightning():
    """Keep Lightning's notices (accelerators available, tips, 'loading the dataloader to
    estimate...', 'restoring states...') and its advice for other setups off the console: a
    run's output is its epochs. Errors and real warnings still show."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)
            warnings.filterwarnings("ignore", message="Checkpoint directory .* not empty")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def record_resumption(run: RunFolder, precision: str) -> None:
    """env.json keeps the first invocation's machine; each continuation adds its own, so a run
    resumed on another kind of CPU says where its precision changed (and the log says it)."""
    import datetime

    env = run.read_env()
    here = environment(precision)
    env.setdefault("resumed", []).append(
        {
            "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **{k: here[k] for k in ("cpu_model", "cpu_count", "cuda", "precision")},
        }
    )
    write_text_atomic(run.env, json.dumps(env, indent=1) + "\n")
    first = env.get("precision")
    if first and first != precision:
        print(
            f"ferlab: note: {run.path} resumed in {precision} on this machine "
            f"({here['cpu_model']}); it began in {first} (env.json records both)",
            file=sys.stderr,
        )


def resolve_precision(precision: str, accelerator: str) -> str:
    if precision == "fp32":
        return "32-true"
    if precision == "bf16":
        return "bf16-mixed"
    if torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    # On CPUs without native bf16 (no AVX-512 BF16/AMX) autocast falls back to slow kernels.
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32-true"


def class_weights(labels: np.ndarray, k: int) -> list[float]:
    counts = np.bincount(labels, minlength=k).clip(min=1)
    return (len(labels) / (k * counts)).tolist()


def label_faces(train_set, val_set, mode: str):
    """(training faces, validation faces, (N, classes) targets or None) by the label mode.
    FER+ trains on the faces its mode keeps (their labels: the targets' top class) and
    validates on the majority-labelled ones; single-label data only has `majority`."""
    if train_set.votes is None:
        if mode != "majority":
            raise FerlabError(f"--labels {mode} needs FER+ votes; this data has one label a face")
        return train_set, val_set, None
    targets, kept = vote_targets_of(train_set.votes, mode)
    train_set = train_set.select(kept)
    train_set = replace(train_set, labels=targets.argmax(1).astype(np.int64))
    val_set = val_set.only_labelled()
    return train_set, val_set, None if mode == "majority" else targets.astype(np.float32)


def die_with_parent() -> None:
    """A DDP child process gets SIGTERM when the process that launched it dies (Linux), so a
    killed run leaves no orphans holding memory."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        pass


def check_devices(cfg: TrainConfig) -> None:
    """Refuse, before a process starts, more DDP processes than the machine serves: on the CPU
    each process is a full copy of the data and the model (99 of them exhaust 24 GiB)."""
    gpu = cfg.accelerator in ("gpu", "cuda") or (
        cfg.accelerator == "auto" and torch.cuda.is_available()
    )
    have = torch.cuda.device_count() if gpu else usable_cores()
    if cfg.devices > have:
        what = "GPUs" if gpu else "CPU cores"
        raise FerlabError(f"--devices {cfg.devices}: this machine has {have} {what}")


def train(
    cfg: TrainConfig,
    resume: bool = False,
    force: bool = False,
    callbacks: list[L.Callback] | None = None,
    given: dict | None = None,
    extend_epochs: int = 0,
) -> RunResult | None:
    """Train cfg.model on cfg.data into the run folder cfg.out. None in DDP child processes.

    On `resume`, `given` holds the options set for this call (checked against the run's
    config.yaml) and `extend_epochs` adds epochs to the run's schedule."""
    if cfg.model not in list_models():  # before anything is written to the run folder
        raise FerlabError(f"unknown model '{cfg.model}'; choose one of {', '.join(list_models())}")
    try:  # refuses arguments the model does not take, and crops for whole-face models
        model_config(cfg.model, **cfg.model_kwargs())
    except FerlabError as e:
        raise FerlabError(f"--crop/--model: {e}" if cfg.crop else str(e)) from None
    check_devices(cfg)
    if _is_child_process():
        die_with_parent()
    cfg = prepare_run_dir(cfg, resume, force, given, extend_epochs)
    out = Path(cfg.out)
    made_here = not resume and not any(out.iterdir())
    try:
        with quiet_lightning():
            result = _train(cfg, resume, callbacks)
        if result is not None and made_here and not RunFolder(out).last.is_file():
            # Nothing to continue and nothing to use: a folder left now would only block the
            # rerun (refused as existing, and --resume finds no checkpoint).
            if result.stopped_by == "interrupt":
                raise KeyboardInterrupt
            raise FerlabError(
                f"{out}: stopped by {result.stopped_by} before an epoch was completed; nothing "
                "was kept (give a budget of at least one epoch)"
            )
        return result
    except BaseException as e:
        # A run that fails before its first epoch leaves nothing that would block a rerun;
        # after one, last.ckpt (written whole or not at all) lets --resume continue it.
        if made_here and not _is_child_process() and not RunFolder(out).last.is_file():
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in FULL and not e.filename:
            raise FerlabError(disk_full(out)) from None  # a logger's write names no file
        raise


def _train(cfg: TrainConfig, resume: bool, callbacks: list[L.Callback] | None):
    out = Path(cfg.out)
    run = RunFolder(out)
    writer = not _is_child_process()
    preprocess = Preprocess(equalize_hist=cfg.equalize_hist)
    faces, fingerprint = load(cfg.data, preprocess)
    split_path = run.split
    start = None
    if cfg.init and not resume:  # a resumed run's weights are in last.ckpt
        start, digest = start_model(cfg.init, cfg.init_sha256, preprocess)
        cfg = replace(cfg, init_sha256=digest)
    if split_path.is_file() and (resume or not writer):
        split = ValidationSplit.load(split_path)
    elif cfg.split_file:
        split = ValidationSplit.load(cfg.split_file)
        if start is not None:
            check_held_out(start, f"--init {cfg.init}", split)
    elif start is not None:  # selected on the faces the start never trained on
        split = validation_split_of(start)
    else:
        split = carve_validation(faces, cfg.val_fraction, cfg.split_seed)
    train_set, val_set = split.apply(faces)  # refuses data the split was not carved from
    train_set, val_set, votes = label_faces(train_set, val_set, cfg.label_mode)
    for name, part in (("Training", train_set), ("validation", val_set)):
        if not len(part):
            raise FerlabError(f"{cfg.data}: no {name} faces with a label to train on")
    if resume and writer:
        saved = TrainConfig.from_yaml(run.config)
        if cfg.extended != saved.extended:  # --extend-epochs, now that the data is the run's
            record = replace(cfg, minutes=saved.minutes, quiet=saved.quiet, data=saved.data)
            write_text_atomic(run.config, record.to_yaml())
    precision = resolve_precision(cfg.precision, cfg.accelerator)
    if writer and not resume:
        split.save(split_path)
        write_text_atomic(run.config, cfg.to_yaml())
        write_text_atomic(run.env, json.dumps(environment(precision), indent=1) + "\n")
    elif writer:
        record_resumption(run, precision)

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    card = ModelCard(
        model=cfg.model,
        model_args=cfg.model_kwargs(len(faces.classes)),
        classes=tuple(faces.classes),
        label_mode=cfg.label_mode if faces.votes is not None else None,
        preprocess=preprocess,
        data_fingerprint=fingerprint,
        data=str(cfg.data),
        split_file=run.split.name,
        recipe=cfg.recipe,
        ferlab_version=__version__,
    )
    weights = class_weights(train_set.labels, len(faces.classes)) if cfg.class_weights else None
    module = FERModule(asdict(cfg), card.to_dict(), weights)
    if start is not None:
        check_same_network(start, card, cfg.init)
        module.model.load_state_dict(start.model.state_dict())
    soft_targets = None
    if cfg.teacher:
        check_teacher(cfg.teacher, split, preprocess)
        soft_targets = teacher_log_probs(cfg.teacher, train_set, cfg.teacher_tta)
    data = FERDataModule(
        train_set, val_set, cfg.batch_size, cfg.balanced_sampling, cfg.seed, soft_targets, votes
    )
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor="val_acc",
        mode="max",
        enable_version_counter=False,
    )
    # Lightning's save_last refreshes last.ckpt only when the best improves; resuming needs the
    # latest epoch, so an unmonitored callback rewrites last.ckpt every epoch.
    latest = ModelCheckpoint(
        dirpath=run.checkpoints, filename="last", save_top_k=1, enable_version_counter=False
    )
    budget = WallClockBudget(cfg.minutes) if cfg.minutes else None
    interactive = not cfg.quiet and sys.stdout.isatty() and sys.stderr.isatty()
    ema = [EMAWeightAveraging(decay=cfg.ema_decay), RawValidation()] if cfg.ema_decay else []
    every = cfg.gradient_norms_every
    gradients = [GradientNorms(run.gradients, every)] if every else []
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy="ddp" if cfg.devices > 1 else "auto",
        use_distributed_sampler=False,  # EpochSampler shards itself (see its docstring)
        precision=precision,
        max_epochs=cfg.epochs,
        gradient_clip_val=cfg.gradient_clip or None,
        limit_train_batches=_train_batches(cfg, len(train_set)),
        num_sanity_val_steps=0,
        log_every_n_steps=20,
        # The run's own record is metrics.csv (HistoryWriter); TensorBoard gets the curves.
        logger=[TensorBoardLogger(out, name="tensorboard", version="")],
        callbacks=[
            checkpoint,
            latest,
            *ema,
            *gradients,
            # One line per epoch where a progress bar is off or would be noise (logs, CI).
            HistoryWriter(out, cfg.epochs, None if interactive else print),
            *([budget] if budget else []),
            *(callbacks or []),
        ],
        plugins=[AtomicCheckpointIO()],
        # A bar redrawn into a log file is noise: one line per epoch there (HistoryWriter).
        enable_progress_bar=interactive,
        enable_model_summary=interactive,
    )
    start = time.time()
    try:
        with sigterm_as_interrupt():
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(run.last) if resume else None,
            )
    except SystemExit:
        # Lightning shuts down gracefully on Ctrl-C/SIGTERM and then calls sys.exit(1);
        # the run still gets its curves and metrics, and last.ckpt stays resumable.
        if not trainer.interrupted:
            raise
    seconds = time.time() - start
    if trainer.global_rank != 0:
        return None
    stopped_by = (
        "budget" if budget and budget.hit else "interrupt" if trainer.interrupted else "epochs"
    )
    metrics = finish_run(out, faces, val_set, seconds, stopped_by, trainer.world_size)
    return RunResult(out, stopped_by, metrics)


def _train_batches(cfg: TrainConfig, n: int) -> float | int:
    """Lightning's limit_train_batches: a whole epoch, or at least one batch of a fraction."""
    if cfg.train_fraction >= 1:
        return 1.0
    per_epoch = max(1, n // cfg.batch_size)
    return max(1, round(cfg.train_fraction * per_epoch))


def finish_run(
    out: Path, faces, val_set, seconds: float, stopped_by: str, processes: int = 1
) -> dict:
    run = RunFolder(out)
    history = run.read_history()
    if history["epoch"]:
        plot_curves({run.name: history}, run.curves, title=f"{run.name}: training record")
    previous = run.read_summary() if run.summary.is_file() else {}
    metrics = {
        "stopped_by": stopped_by,
        "processes": processes,  # DDP world size of the last invocation
        "epochs_completed": len(history["epoch"]),
        "train_seconds": round(previous.get("train_seconds", 0) + seconds, 1),
        "mean_train_img_s": round(float(np.nanmean(history["train_img_s"])), 1)
        if history["epoch"]
        else None,
    }
    best = run.best
    if best.is_file():
        device = "cuda" if torch.cuda.is_available() else "cpu"
        predictor = load_model(best, device, runtime="torch")
        metrics["best_epoch"] = predictor.card.epochs
        metrics["model"] = predictor.card.model
        metrics["params"] = sum(p.numel() for p in predictor.model.parameters())
        splits = {"val": val_set.only_labelled()}
        # Reported, never used for selection: the best checkpoint is chosen on validation.
        if "PublicTest" in faces.split_names:
            splits["PublicTest"] = faces.split("PublicTest").only_labelled()
        for name, split in splits.items():
            report = evaluate(predictor, split, split=name).report
            metrics[name] = {"n": report["n"], "accuracy": round(report["accuracy"], 4)}
    run.write_summary(metrics)
    return metrics
