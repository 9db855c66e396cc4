import json
import math
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, synthetic_faces, tiny_config, write_tree
from ferlab.errors import FerlabError
from ferlab.inference import load_model
from ferlab.runs import RunFolder
from ferlab.training import TrainConfig, list_recipes, recipe_settings, train
from ferlab.training.augment import build_augment
from ferlab.training.speed import plan_epochs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tree(synthetic_faces(per_class=30, seed=1), tmp_path_factory.mktemp("d") / "d")


@pytest.mark.slow
def test_fast_model_learns_well_above_chance(data, tmp_path):
    # No flips: the synthetic classes differ by where their square is, left or right.
    result = train(tiny_config(data, tmp_path / "run", epochs=8, lr=1e-2))
    assert result.stopped_by == "epochs"
    assert result.metrics["val"]["accuracy"] > 0.7  # chance is 1/7
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "split.json",
        "metrics.csv",
        "curves.png",
        "env.json",
        "metrics.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    card = load_model(run).card
    assert card.model == "cnn-baseline" and card.preprocess.equalize_hist is True
    assert card.classes[0] == "angry" and card.data_fingerprint.startswith("v2:")


class InterruptAt(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def _weights(run):
    return load_model(run / "checkpoints" / "last.ckpt").model.state_dict()


def test_resume_continues_exactly(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "whole", augment="standard")
    train(cfg)
    stopped = train(replace(cfg, out=str(tmp_path / "split")), callbacks=[InterruptAt(2)])
    assert stopped.stopped_by == "interrupt"
    assert load_model(tmp_path / "split" / "checkpoints" / "last.ckpt").card.epochs == 2
    resumed = train(replace(cfg, out=str(tmp_path / "split")), resume=True)
    assert resumed.stopped_by == "epochs" and resumed.metrics["epochs_completed"] == 4
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    for k in whole:
        torch.testing.assert_close(whole[k], split[k], rtol=1e-5, atol=1e-6)


def test_budget_stops_cleanly_and_writes_everything(data, tmp_path):
    # 15 s: a few epochs of this tiny run even on a busy machine (a budget that ends before
    # the first epoch is refused: the run_folder would hold nothing to use or continue)
    result = train(tiny_config(data, tmp_path / "run", epochs=1000, minutes=0.25))
    assert result.stopped_by == "budget"
    assert 1 <= result.metrics["epochs_completed"] < 1000
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["stopped_by"] == "budget"


def test_existing_run_is_never_overwritten(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run", epochs=1)
    train(cfg)
    before = (tmp_path / "run" / "metrics.json").read_text()
    with pytest.raises(FerlabError, match="--resume.*--force"):
        train(cfg)
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    r = run_cli("train", "--data", data, "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "run folder exists" in r.stderr
    with pytest.raises(FerlabError, match="nothing to resume"):
        train(tiny_config(data, tmp_path / "other"), resume=True)
    train(cfg, force=True)  # --force replaces it
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(data, tmp_path):
    r = run_cli(
        "train",
        "--data",
        data,
        "--out",
        tmp_path / "ddp",
        "--epochs",
        "1",
        "--devices",
        "2",
        "--accelerator",
        "cpu",
        "--batch-size",
        "16",
        "--precision",
        "fp32",
        "--quiet",
        timeout=400,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    env = json.loads((tmp_path / "ddp" / "env.json").read_text())
    assert "--devices" in env["argv"]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["processes"] == 2


def test_rarely_used_options_train(data, tmp_path):
    result = train(
        tiny_config(
            data,
            tmp_path / "run",
            epochs=2,
            class_weights=True,
            balanced_sampling=True,
            optimizer="sgd",
            schedule="cosine",
            augment="strong",
            label_smoothing=0.1,
        )
    )
    assert result.metrics["epochs_completed"] == 2


def test_balanced_sampler_evens_out_classes():
    from ferlab.training.module import EpochSampler

    labels = np.array([0] * 900 + [1] * 100)
    weights = torch.from_numpy(1.0 / np.bincount(labels)[labels])
    sampler = EpochSampler(len(labels), seed=0, weights=weights)
    drawn = labels[list(sampler)]
    assert 0.4 < drawn.mean() < 0.6  # class 1 is 10% of the data, ~50% of the draws
    sampler.set_epoch(1)
    assert list(sampler) != list(EpochSampler(len(labels), seed=0, weights=weights))
    plain = EpochSampler(10, seed=3)
    assert sorted(plain) == list(range(10)) and list(plain) == list(EpochSampler(10, seed=3))


@settings(deadline=None, max_examples=60)
@given(
    img_s=st.floats(1, 1e5),
    n=st.integers(1, 100_000),
    minutes=st.floats(0.01, 600),
)
def test_plan_epochs_fills_the_budget(img_s, n, minutes):
    epochs, fraction = plan_epochs(img_s, n, minutes, max_epochs=200, min_epochs=5)
    assert 5 <= epochs <= 200 and 0 < fraction <= 1
    seconds = epochs * fraction * n / img_s  # the training the plan asks for, at this speed
    budget = minutes * 60
    if fraction > 0.01 and epochs < 200:  # neither the smallest share nor the epoch cap
        # Most of the budget, never all of it: validation and data handling need the rest.
        assert 0.7 * budget <= seconds < budget
    bigger = plan_epochs(img_s, n, 2 * minutes, max_epochs=200, min_epochs=5)
    assert bigger[0] * bigger[1] >= epochs * fraction  # a longer budget never plans less


def test_crop_augmentation_cuts_random_windows():
    x = torch.arange(48 * 48, dtype=torch.float32).reshape(1, 1, 48, 48).repeat(64, 1, 1, 1)
    out = build_augment("none", crop=44)(x)
    assert out.shape == (64, 1, 44, 44)
    corners = {int(o[0, 0, 0]) for o in out}  # the window's top-left pixel tells its offset
    assert len(corners) > 5 and all(divmod(c, 48)[0] <= 4 and c % 48 <= 4 for c in corners)


def test_recipe_sets_the_run_and_options_override_it(tree, tmp_path):
    flagship = recipe_settings("flagship")
    assert flagship["recipe"].startswith("flagship@") and flagship["crop"] == 44
    r = run_cli(
        "train",
        "--data",
        tree,
        "--recipe",
        "flagship",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    saved = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert saved.recipe == flagship["recipe"] and saved.crop == 44 and saved.epochs == 1
    assert saved.label_smoothing == flagship["label_smoothing"]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["ferlab"]["recipe"] == flagship["recipe"]
    # Trained on 44x44 crops, so it looks at the centre 44x44 of a whole face.
    model = load_model(tmp_path / "run").model
    assert model.input_crop == 44
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x[..., 2:46, 2:46]))
    r = run_cli("train", "--data", tree, "--recipe", "nope", "--out", tmp_path / "other")
    assert r.returncode == 2 and "unknown recipe 'nope'" in r.stderr
    assert not (tmp_path / "other").exists()


def test_packaged_recipes_keep_their_old_versions():
    assert recipe_settings("flagship@1")["recipe"] == "flagship@1"
    assert recipe_settings("flagship@1")["optimizer"] == "adamw"
    newest = recipe_settings("flagship")
    assert newest["recipe"] == "flagship@2" and newest["ema_decay"] > 0
    with pytest.raises(FerlabError, match="unknown recipe version 'flagship@9'"):
        recipe_settings("flagship@9")
    # fast@3 (the shipped `fast`) is fast@2 for twice the epochs; both distil from the
    # teacher's TTA answers, fast@1, which made the first `fast`, not.
    newest, older = recipe_settings("fast"), recipe_settings("fast@2")
    assert newest["recipe"] == "fast@3" and newest["teacher_tta"]
    assert newest["epochs"] == 2 * older["epochs"]
    assert {k: v for k, v in newest.items() if k not in ("recipe", "epochs")} == {
        k: v for k, v in older.items() if k not in ("recipe", "epochs")
    }
    assert not recipe_settings("fast@1").get("teacher_tta", False)


LONG = dict(optimizer="sgd", schedule="cosine", warmup_epochs=1, lr=0.05, ema_decay=0.9)


def test_resume_refuses_changed_options_and_names_them(data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(data, run, epochs=1))
    before = (run / "config.yaml").read_text()
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--epochs", "60", "--lr", "0.1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "epochs: 1 -> 60" in r.stderr and "lr: 0.005 -> 0.1" in r.stderr
    assert (run / "config.yaml").read_text() == before
    # The same values, a budget and another spelling of the same data are accepted.
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--epochs", "1", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]


class FakeClock:
    """The budget's clock: 1 s per reading for the first `slow_after` readings, then 10 s (the
    machine got busy), so an epoch outlasts what the first one predicted."""

    def __init__(self, slow_after: int):
        self.t, self.readings, self.slow_after = 0.0, 0, slow_after

    def __call__(self) -> float:
        self.readings += 1
        self.t += 1.0 if self.readings <= self.slow_after else 10.0
        return self.t


def test_a_budget_stop_mid_epoch_is_trained_again_whole_on_resume(data, tmp_path, monkeypatch):
    from ferlab.training import callbacks

    cfg = tiny_config(data, tmp_path / "whole", augment="standard", mixup=0.2, **LONG)
    train(cfg)
    # The clock is read at the start, at each epoch's start and end and after each batch: the
    # first epoch (5 batches) takes ~7 s, so 20 s look like room for another; then the
    # machine slows down and the budget runs out in the second epoch's first batch.
    monkeypatch.setattr(callbacks, "_now", FakeClock(slow_after=8))
    cut = replace(cfg, out=str(tmp_path / "cut"), minutes=20 / 60)
    stopped = train(cut)
    assert stopped.stopped_by == "budget"
    assert stopped.metrics["epochs_completed"] == 1  # the unfinished second epoch is not kept
    assert load_model(tmp_path / "cut" / "checkpoints" / "last.ckpt").card.epochs == 1
    monkeypatch.setattr(callbacks, "_now", __import__("time").monotonic)
    resumed = train(replace(cut, minutes=None), resume=True)
    assert resumed.metrics["epochs_completed"] == 4
    history = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3", "4"]
    for weights in ("final", "raw"):  # the EMA and the raw weights both match exactly
        whole = load_model(tmp_path / "whole", weights=weights).model.state_dict()
        split = load_model(tmp_path / "cut", weights=weights).model.state_dict()
        for k in whole:
            torch.testing.assert_close(whole[k], split[k], rtol=0, atol=0)


def test_ema_weights_are_validated_and_kept_beside_the_raw_ones(data, tmp_path):
    train(tiny_config(data, tmp_path / "run", epochs=3, **LONG))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "current_model_state" in ckpt and "averaging_state" in ckpt
    ema = load_model(tmp_path / "run" / "checkpoints" / "last.ckpt").model.state_dict()
    raw = load_model(tmp_path / "run" / "checkpoints" / "last.ckpt", weights="raw")
    raw = raw.model.state_dict()
    key = next(k for k in ema if k.endswith("conv1.weight"))
    assert not torch.equal(ema[key], raw[key])
    # The EMA is what the checkpoint's state holds: decay 0.9 of the raw weights' history.
    lightning_raw = {k.removeprefix("model."): v for k, v in ckpt["current_model_state"].items()}
    torch.testing.assert_close(raw[key], lightning_raw[key])


def test_extend_epochs_continues_the_schedule(data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(data, run, epochs=2, **LONG))
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--extend-epochs", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    saved = TrainConfig.from_yaml(run / "config.yaml")
    assert saved.epochs == 4 and saved.extended == 2
    history = (run / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3", "4"]  # none twice
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    steps = ckpt["global_step"]
    assert ckpt["epoch"] == 3 and steps % 4 == 0 and ckpt["lr_schedulers"][0]["last_epoch"] == steps
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] < 0.05 * 0.2  # near the end
    onecycle = tmp_path / "onecycle"
    train(tiny_config(data, onecycle, epochs=1))
    r = run_cli("train", "--data", data, "--out", onecycle, "--resume", "--extend-epochs", "1")
    assert r.returncode == 2 and "cannot be extended" in r.stderr
    r = run_cli("train", "--data", data, "--out", tmp_path / "new", "--extend-epochs", "1")
    assert r.returncode == 2 and "with --resume" in r.stderr


class ReadHistoryAt(L.Callback):
    def __init__(self, run, epoch):
        self.run, self.epoch, self.rows = run, epoch, None

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            self.rows = (self.run / "metrics.csv").read_text().splitlines()[1:]


def test_metrics_csv_is_current_while_training(data, tmp_path):
    probe = ReadHistoryAt(tmp_path / "run", epoch=2)
    result = train(tiny_config(data, tmp_path / "run", epochs=3), callbacks=[probe])
    assert [row.split(",")[0] for row in probe.rows] == ["1", "2"]
    # The record's validation accuracy of the selected epoch is what evaluating its
    # checkpoint gives afterwards.
    history = RunFolder(tmp_path / "run").read_history()
    best = result.metrics["best_epoch"]
    recorded = history["val_acc"][best - 1]
    assert recorded == pytest.approx(result.metrics["val"]["accuracy"], abs=1e-4)
    assert all(0 < x < 10 for x in history["train_loss"]) and all(history["epoch_seconds"])


def test_an_epoch_recorded_again_replaces_its_row_and_the_later_ones(tmp_path):
    run = RunFolder(tmp_path)
    for epoch in (1, 2, 3):
        run.append_history({"epoch": epoch, "train_loss": float(epoch), "val_acc": 0.5})
    # Stopped after epoch 3's row but before its checkpoint: resumed, epoch 3 runs again.
    run.append_history({"epoch": 3, "train_loss": 30.0, "val_acc": 0.6})
    history = run.read_history()
    assert history["epoch"] == [1, 2, 3] and history["train_loss"] == [1.0, 2.0, 30.0]
    assert history["val_acc"] == [0.5, 0.5, 0.6] and math.isnan(history["val_acc_raw"][0])
    run.append_history({"epoch": 2, "train_loss": 20.0})
    assert run.read_history()["train_loss"] == [1.0, 20.0]


def test_crop_is_refused_for_a_model_that_takes_whole_faces(data, tmp_path):
    r = run_cli(
        "train", "--data", data, "--out", tmp_path / "run", "--model", "dnn-study", "--crop", "44"
    )
    assert r.returncode == 2 and "takes whole 48x48 faces only" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_training_restores_the_sigterm_handler(data, tmp_path):
    import signal

    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        train(tiny_config(data, tmp_path / "run", epochs=1))
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ddp_shards_differ_between_epochs_and_ranks():
    from ferlab.training.module import EpochSampler

    ranks = [EpochSampler(101, seed=0, rank=r, world=2) for r in range(2)]
    first = [list(s) for s in ranks]
    assert len(first[0]) == len(first[1]) == 50 and not set(first[0]) & set(first[1])
    for s in ranks:
        s.set_epoch(1)
    second = [list(s) for s in ranks]
    assert second[0] != first[0] and second[1] != first[1]
    assert not set(second[0]) & set(second[1])


def test_a_run_moved_to_another_machine_resumes_from_its_committed_files(data, tmp_path):
    """What a campaign commits (config, split, history, last.ckpt) is enough to continue it
    elsewhere: the run lives where --out says, its history keeps the earlier epochs."""
    import shutil

    first = tmp_path / "first"
    train(tiny_config(data, first, epochs=2, **LONG))
    moved = tmp_path / "moved"
    (moved / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "split.json", "metrics.csv", "checkpoints/last.ckpt"):
        shutil.copyfile(first / name, moved / name)
    before = sorted(p.name for p in first.rglob("*"))
    r = run_cli("train", "--data", data, "--out", moved, "--resume", "--extend-epochs", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in first.rglob("*")) == before  # nothing written there
    history = (moved / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3"]
    assert TrainConfig.from_yaml(moved / "config.yaml").out == str(moved)


def test_a_quiet_train_prints_its_epochs_and_nothing_else(data, tmp_path):
    args = ["--data", data, "--out", tmp_path / "run", "--quiet"]
    # A process of its own: what Lightning and torch print at import time counts too.
    r = run_cli("train", *args, "--epochs", "2", "--schedule", "cosine", isolated=True)
    assert r.returncode == 0, r.stderr[-2000:]
    console = r.stdout + r.stderr
    for noise in ("Tip", "litlogger", "GPU available", "TPU", "Warning", "deprecated", "Loading"):
        assert noise not in console, noise
    lines = console.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"]
    assert len(lines) == 3 and "stopped by epochs after 2 epochs" in lines[2]
    r = run_cli("train", *args, "--resume", "--extend-epochs", "1")
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert lines[0].startswith("resuming at epoch 3 of 3: ") and "h to the end" in lines[0]
    assert lines[1].startswith("epoch 3/3: ") and len(lines) == 3
    # Without --quiet, output that is not a terminal (a log file, CI) gets the same lines: no
    # progress bar redrawn into the file, no layer table.
    r = run_cli(
        "train", "--data", data, "--out", tmp_path / "logged", "--epochs", "2", isolated=True
    )
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "epoch 1/2",
        "epoch 2/2",
        str(tmp_path / "logged"),
    ]


def test_resume_checks_the_data_by_content(data, tmp_path):
    from ferlab.data import RAW, convert, load

    run = tmp_path / "run"
    train(tiny_config(data, run, epochs=1, schedule="cosine"))
    other = write_tree(synthetic_faces(per_class=30, seed=8), tmp_path / "other")
    r = run_cli("train", "--data", other, "--out", run, "--resume", "--extend-epochs", "1")
    assert r.returncode == 2 and "not among its Training faces" in r.stderr
    assert "Traceback" not in r.stderr and TrainConfig.from_yaml(run / "config.yaml").epochs == 1
    # The same faces as fer2013.csv: another container, the same run.
    convert(load(data, RAW)[0], "fer2013-csv", tmp_path / "csv")
    r = run_cli(
        "train", "--data", tmp_path / "csv", "--out", run, "--resume", "--extend-epochs", "1"
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_train_config_of_a_finished_run_reproduces_it(data, tmp_path):
    from typer.testing import CliRunner

    from ferlab.commands.cli import app
    from ferlab.runs import RunFolder

    first = RunFolder(tmp_path / "first")
    train(tiny_config(data, first.path, epochs=2, augment="standard", crop=44, seed=5))
    r = CliRunner().invoke(
        app, ["train", "--config", str(first.config), "--out", str(tmp_path / "again"), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    again = RunFolder(tmp_path / "again")
    assert TrainConfig.from_yaml(again.config) == replace(
        TrainConfig.from_yaml(first.config), out=str(again.path)
    )
    a, b = first.read_history(), again.read_history()
    assert a["train_loss"][0] == b["train_loss"][0] and a["val_loss"] == b["val_loss"]
    # Options given beside --config override it.
    r = CliRunner().invoke(
        app,
        ["train", "--config", str(first.config), "--out", str(tmp_path / "longer"), "--epochs", "3"]
        + ["--quiet"],
    )
    assert (
        r.exit_code == 0 and TrainConfig.from_yaml(tmp_path / "longer" / "config.yaml").epochs == 3
    )


def test_a_config_with_an_unknown_setting_is_refused(data, tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text(tiny_config(data, tmp_path / "x").to_yaml() + "colour: blue\n")
    r = run_cli("train", "--config", bad, "--out", tmp_path / "run")
    assert r.returncode == 2 and "unknown settings colour" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_gradient_norms_are_recorded_per_layer_and_clipping_bounds_the_step(data, tmp_path):
    from ferlab.models import weight_layers
    from ferlab.runs import RunFolder

    args = {"depth": 4, "width": 16}
    cfg = tiny_config(data, tmp_path / "dnn", model="dnn-study", model_args=args, epochs=2)
    train(replace(cfg, gradient_norms_every=2))
    run = RunFolder(tmp_path / "dnn")
    steps, norms = run.read_gradients()
    header = run.gradients.read_text().splitlines()[0].split(",")
    layers = list(weight_layers(load_model(run.path).model))
    assert header == ["step", "epoch", *layers] and norms.shape == (len(steps), len(layers))
    assert steps[0] == 0 and (np.diff(steps) == 2).all() and (norms > 0).all()
    # A clipped run moves its weights by at most lr x clip per SGD step (no momentum in the
    # first step, no decay): here one step.
    torch.manual_seed(0)
    clip = replace(cfg, out=str(tmp_path / "clip"), epochs=1, train_fraction=0.01)
    clip = replace(clip, optimizer="sgd", lr=0.5, weight_decay=0.0, schedule="none")
    train(replace(clip, gradient_clip=1e-6))
    moved = load_model(tmp_path / "clip" / "checkpoints" / "last.ckpt").model.state_dict()
    from ferlab.models import create

    torch.manual_seed(0)
    L.seed_everything(0, verbose=False)
    start = create("dnn-study", **args).state_dict()
    change = max((moved[k] - start[k]).abs().max().item() for k in start if "weight" in k)
    assert change <= 0.5 * 1e-6 * 1.01


class FirstTrainingInput(L.Callback):
    """The first training batch's faces and what the network was given for them."""

    def on_train_start(self, trainer, pl_module):
        def keep(_, args):
            if pl_module.training and not hasattr(self, "seen"):
                self.seen = args[0].detach().flatten(1).clone()

        pl_module.model.register_forward_pre_hook(keep)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "faces"):
            self.faces = batch[0].float().div(255).flatten(1)


def test_mixup_trains_on_blends_of_two_faces_of_the_batch(data, tmp_path):
    probe = FirstTrainingInput()
    train(tiny_config(data, tmp_path / "run", epochs=1, mixup=1.0), callbacks=[probe])
    faces, seen = probe.faces, probe.seen
    assert not torch.allclose(faces, seen, atol=1e-3)  # the network did not see plain faces
    # Each input is share * its face + (1 - share) * another face, one share for the batch.
    i = int((seen - faces).norm(dim=1).argmax())
    d = faces[i] - faces
    shares = ((seen[i] - faces) * d).sum(1) / d.pow(2).sum(1).clamp(min=1e-9)
    misfit = (seen[i] - faces - shares[:, None] * d).norm(dim=1)
    misfit[i] = float("inf")
    share = shares[int(misfit.argmin())]
    assert 0.0 < share < 1.0 and misfit.min() < 1e-3
    blends = share * faces[:, None, :] + (1 - share) * faces[None, :, :]
    error = (seen[:, None, :] - blends).norm(dim=2).min(dim=1).values
    assert error.max() < 1e-3


def test_teacher_tta_soft_targets_are_its_answers_averaged_over_its_views(monkeypatch):
    from ferlab.runtime import default_runtime
    from ferlab.training import distill

    faces = synthetic_faces(per_class=3, seed=3)
    plain = distill.teacher_log_probs("fast", faces)
    tta = distill.teacher_log_probs("fast", faces, tta=True)
    teacher = load_model("fast", runtime=default_runtime())
    averaged = teacher.probabilities(faces, tta=True)
    np.testing.assert_allclose(np.exp(tta), averaged, atol=1e-5)
    answers = teacher.probabilities(faces)
    np.testing.assert_allclose(np.exp(plain), answers, atol=1e-5)
    assert np.abs(tta - plain).max() > 1e-3
    # Each is cached under its own name: asked again, neither is computed again nor mixed up.
    monkeypatch.setattr(distill, "_teacher_probabilities", None)
    np.testing.assert_array_equal(distill.teacher_log_probs("fast", faces, tta=True), tta)
    np.testing.assert_array_equal(distill.teacher_log_probs("fast", faces), plain)


def test_a_student_learns_the_teachers_answers_from_its_soft_targets(data, tmp_path, monkeypatch):
    from dataclasses import replace as swap

    from ferlab.training import distill

    teacher = tmp_path / "teacher"
    train(tiny_config(data, teacher, epochs=8, lr=1e-2))
    # The student's data carries shuffled labels: what it learns right comes from the teacher.
    faces = synthetic_faces(per_class=30, seed=1)
    shuffled = swap(faces, labels=np.random.default_rng(0).permutation(faces.labels))
    noisy = write_tree(shuffled, tmp_path / "shuffled")
    probe = synthetic_faces(per_class=5, seed=11).images
    answers = load_model(teacher).probabilities(probe).argmax(1)
    agreement = {}
    # The relabelled data is other data: its validation faces are the teacher's training faces
    # (refused below); what is tested here is what the student learns.
    monkeypatch.setattr("ferlab.training.run.check_teacher", lambda *a: None)
    for weight in (0.0, 1.0):
        if weight:  # the teacher's answers were computed once and cached: not asked again
            monkeypatch.setattr(distill, "_teacher_probabilities", None)
        out = tmp_path / f"student-{weight}"
        cfg = tiny_config(noisy, out, epochs=8, lr=1e-2, teacher=str(teacher))
        train(swap(cfg, distill_weight=weight))
        student = load_model(out).probabilities(probe).argmax(1)
        agreement[weight] = float((student == answers).mean())
    assert agreement[1.0] > 0.8 and agreement[0.0] < 0.5, agreement
    monkeypatch.undo()
    # A student validated on faces the teacher trained on is refused before anything is written.
    out = tmp_path / "leaky"
    r = run_cli(
        "train", "--data", noisy, "--out", out, "--teacher", teacher, "--epochs", "1",
        "--model", "cnn-small",
    )  # fmt: skip
    assert r.returncode == 2 and "validation faces" in r.stderr and "Traceback" not in r.stderr


def test_every_packaged_recipe_names_a_network_it_can_build_and_files_that_exist():
    from ferlab.models import model_config
    from ferlab.training.config import recipe_versions

    root = Path(__file__).resolve().parent.parent
    for name in list_recipes():
        for version in recipe_versions(name):
            s = recipe_settings(f"{name}@{version}")
            TrainConfig(**s)
            args = dict(s.get("model_args", {}))
            if s.get("crop"):
                args["input_crop"] = s["crop"]
            assert model_config(s.get("model", "cnn-baseline"), **args).standalone
            # Files a recipe names (a fine-tuning start, a teacher) are repository paths,
            # committed or (the v3 ensemble) built by the script its notes name.
            for ref in (s.get("init"), s.get("teacher")):
                if ref and "/" in ref and not ref.endswith("v3/ensemble.pt"):
                    assert (root / ref).is_file(), f"{name}@{version}: {ref}"
