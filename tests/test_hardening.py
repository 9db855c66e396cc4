"""Cases a hostile pass broke: each fails without its fix, and answers with one line and exit
2 (or a correct result), leaving nothing behind, overwriting nothing and running nothing."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import run_cli, synthetic_faces, tiny_config, write_tree
from ferlab.errors import FerlabError
from ferlab.training import train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tree(synthetic_faces(per_class=8, seed=2), tmp_path_factory.mktemp("d") / "d")


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("r") / "run"
    train(tiny_config(data, run, epochs=1, schedule="cosine"))
    return run


class Payload:
    """Unpickling this creates a file: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_resume_never_runs_code_from_last_ckpt(finished_run, data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "ran"
    torch.save({"state_dict": {}, "payload": Payload(marker)}, run / "checkpoints" / "last.ckpt")
    # torch's documented switch turns weights_only off wherever a caller did not ask for it.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--extend-epochs", "1")
    assert not marker.exists()
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "last.ckpt" in r.stderr and "not a readable checkpoint" in r.stderr


@pytest.mark.parametrize("kind", ["damaged", "foreign"])
def test_resume_of_a_damaged_or_foreign_last_ckpt_is_one_line(kind, finished_run, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    last = run / "checkpoints" / "last.ckpt"
    if kind == "damaged":
        last.write_bytes(b"PK\x03\x04 not a checkpoint")
    else:  # readable, but not what a run saves
        torch.save({"state_dict": {"w": torch.zeros(2)}}, last)
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--extend-epochs", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "last.ckpt" in r.stderr
    with pytest.raises(FerlabError, match="last.ckpt"):
        train(tiny_config(data, run, epochs=1, schedule="cosine"), resume=True, extend_epochs=1)


def test_only_ship_writes_into_the_package_weights(finished_run, tmp_path):
    from ferlab.atomic import PACKAGE_WEIGHTS_DIR

    shipped = PACKAGE_WEIGHTS_DIR / "default.pt"
    before = shipped.read_bytes()
    r = run_cli("export", finished_run, "--weights", shipped, "--force")
    assert r.returncode == 2 and "only `ferlab ship" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("export", finished_run, "--onnx", PACKAGE_WEIGHTS_DIR / "x.onnx")
    assert r.returncode == 2 and not (PACKAGE_WEIGHTS_DIR / "x.onnx").exists()
    assert shipped.read_bytes() == before


@pytest.fixture(scope="module")
def six_class_run(tmp_path_factory):
    """A run on faces of every class but disgust, so a model that always answers disgust
    scores 0 on its validation split and anything it trained on scores more."""
    faces = synthetic_faces(per_class=8, seed=5)
    root = tmp_path_factory.mktemp("six")
    data = write_tree(faces.select(faces.labels != 1), root / "d")
    train(tiny_config(data, root / "run", epochs=1, schedule="cosine"))
    return root / "run", data


def always_disgust(run: Path, dest: Path) -> Path:
    """A copy of `run` whose selected checkpoint answers "disgust" to every face."""
    shutil.copytree(run, dest)
    for ckpt in (dest / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        weights = state["state_dict"]
        bias = weights["model.classifier.bias"]
        weights["model.classifier.weight"].zero_()
        bias.fill_(-100.0)
        bias[1] = 100.0
        torch.save(state, ckpt)
    return dest


def test_ship_scores_both_models_on_the_same_faces_and_keeps_the_better(six_class_run, tmp_path):
    import ferlab
    from ferlab.inference import load_model
    from ferlab.shipping import ship

    run, data = six_class_run
    weights = tmp_path / "weights"
    first = ship(run, "default", data, tmp_path / "rec", weights_dir=weights)
    assert first.replaced is None and (tmp_path / "rec" / "metrics.json").is_file()
    card = load_model(first.weights).card
    assert card.metrics["val"]["accuracy"] == first.metrics["val"]["accuracy"] > 0
    assert card.ferlab_version == ferlab.__version__ == "0.2.0"  # the ferlab that shipped it
    kept = first.weights.read_bytes()
    worse = always_disgust(run, tmp_path / "worse")
    with pytest.raises(FerlabError, match="not replacing it"):
        ship(worse, "default", data, tmp_path / "rec2", weights_dir=weights)
    assert first.weights.read_bytes() == kept and not (tmp_path / "rec2").exists()
    again = ship(worse, "default", data, weights_dir=weights, force=True)
    assert again.shipped_figures["val"]["accuracy"] == first.metrics["val"]["accuracy"]
    assert again.metrics["val"]["accuracy"] == 0 and first.weights.read_bytes() != kept


def test_ship_never_replaces_a_model_of_other_classes_or_another_split(
    six_class_run, data, tmp_path
):
    from ferlab.atomic import shipping
    from ferlab.export import export_weights
    from ferlab.inference import load_model
    from ferlab.shipping import ship

    run, six = six_class_run
    weights = tmp_path / "weights"
    card = load_model(run).card
    eight = replace(
        card,
        classes=(*card.classes, "contempt"),
        model_args={**card.model_args, "num_classes": 8},
    )
    with shipping():
        export_weights(eight.build(), eight, weights / "ferplus.pt")
    kept = (weights / "ferplus.pt").read_bytes()
    for force in (False, True):
        with pytest.raises(FerlabError, match="keeps its classes"):
            ship(run, "ferplus", six, weights_dir=weights, force=force)
    assert (weights / "ferplus.pt").read_bytes() == kept
    # A run selected on another split (here: of other data) is not compared on validation.
    ship(run, "fast", six, weights_dir=weights)
    other = tmp_path / "other"
    train(tiny_config(data, other, epochs=1, schedule="cosine"))
    with pytest.raises(FerlabError, match="another validation split"):
        ship(other, "fast", data, weights_dir=weights)
    forced = ship(other, "fast", data, weights_dir=weights, force=True)  # compares nothing
    assert forced.shipped_figures is None and forced.replaced is not None


def test_a_signal_during_the_ship_commit_does_not_stop_it():
    import os
    import signal

    from ferlab.shipping import _signals_ignored

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    done = []
    try:
        with _signals_ignored():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("record")
            done.append("weights")
        assert done == ["record", "weights"]  # the block ran to its end; no interrupt after it
    finally:
        signal.signal(signal.SIGTERM, before)


def test_more_devices_than_cores_is_refused_before_anything_starts(data, tmp_path):
    import os

    cores = len(os.sched_getaffinity(0))
    run = tmp_path / "run"
    r = run_cli(
        "train", "--data", data, "--out", run, "--devices", cores + 1, "--accelerator", "cpu"
    )
    assert r.returncode == 2 and f"this machine has {cores} CPU cores" in r.stderr, r.stderr
    assert not run.exists()
    r = run_cli("train", "--data", data, "--out", run, "--devices", 99)
    assert r.returncode == 2 and not run.exists()


@pytest.mark.parametrize(
    "option, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.1"), ("--minutes", "-1")]
)
def test_bad_numbers_are_refused_before_a_run_folder_exists(data, tmp_path, option, value):
    run = tmp_path / "run"
    r = run_cli("train", "--data", data, "--out", run, option, value, "--epochs", "1")
    assert r.returncode == 2 and option in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not run.exists()


def test_a_deeply_nested_split_file_is_one_line(data, tmp_path):
    split = tmp_path / "split.json"
    split.write_text("[" * 100_000 + "]" * 100_000)
    r = run_cli("train", "--data", data, "--out", tmp_path / "run", "--split", split)
    assert r.returncode == 2 and "nested too deeply" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_onnx_files_with_a_bad_card_or_too_large_are_one_line(finished_run, tmp_path, monkeypatch):
    import onnx

    from ferlab import runtime

    good = tmp_path / "m.onnx"
    assert run_cli("export", finished_run, "--onnx", good).returncode == 0
    graph = onnx.load(str(good))
    for p in graph.metadata_props:
        if p.key == "ferlab":
            p.value = "{not json"
    bad = tmp_path / "bad.onnx"
    onnx.save(graph, str(bad))
    r = run_cli("evaluate", bad, "--data", tmp_path, "--runtime", "onnx")
    assert r.returncode == 2 and "not JSON" in r.stderr, r.stderr
    monkeypatch.setattr(runtime, "MAX_ONNX_BYTES", good.stat().st_size - 1)
    r = run_cli("evaluate", good, "--data", tmp_path, "--runtime", "onnx")
    assert r.returncode == 2 and "larger than any ferlab model" in r.stderr, r.stderr


def test_predict_refuses_an_output_that_is_its_input(data, finished_run, tmp_path):
    dataset = tmp_path / "faces.zip"
    dataset.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    before = dataset.read_bytes()
    r = run_cli("predict", finished_run, dataset, "--out", dataset, "--force")
    assert r.returncode == 2 and "is (or holds) the input" in r.stderr, r.stderr
    assert dataset.read_bytes() == before
    r = run_cli("predict", finished_run, data, "--annotate", data, "--force")
    assert r.returncode == 2 and "is (or holds) the input" in r.stderr
    assert any(data.rglob("*.png"))


def test_a_raw_pickle_checkpoint_is_one_line_and_no_warning(tmp_path, data):
    import pickle

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"state_dict": {}}))
    r = run_cli("evaluate", raw, "--data", data, isolated=True)
    assert r.returncode == 2 and "not a readable checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


class FillsUp:
    """A file that takes `room` bytes and then fails as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, b) -> int:
        import errno

        if len(b) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


@pytest.mark.parametrize("full_after", [0, 2])  # checkpoint writes that still fit
def test_a_full_disk_is_one_line_naming_the_file_and_the_run_stays_usable(
    data, tmp_path, monkeypatch, capsys, full_after
):
    from ferlab.commands.cli import main

    real_save, writes = torch.save, []

    def save(obj, f, *a, **kw):
        writes.append(1)
        room = 1 << 40 if len(writes) <= full_after else 1000
        return real_save(obj, FillsUp(f, room), *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--quiet"]
    args += ["--batch-size", "16", "--precision", "fp32"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "no space left on the device" in err
    assert str(out / "checkpoints") in err and ".ckpt" in err
    monkeypatch.setattr(torch, "save", real_save)
    if full_after == 0:  # nothing finished: nothing left to block the rerun
        assert not out.exists()
    else:  # epoch 1 finished: its last.ckpt is whole and the run continues
        assert not list((out / "checkpoints").glob("*.tmp")) and not list(out.rglob(".*.tmp"))
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--out", str(out), "--resume", "--quiet"])
        assert exit_.value.code in (0, None)
        assert "stopped by epochs after 2 epochs" in capsys.readouterr().out


def test_an_interrupted_predict_leaves_no_copies_and_its_rows_to_resume(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from ferlab.errors import FerlabError
    from ferlab.photos import bulk, media

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(folder / f"p{i}.jpg")
    real, calls = bulk.Worker.photos, []

    def photos(self, items):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what SIGTERM becomes in the command
        return real(self, items)

    monkeypatch.setattr(bulk.Worker, "photos", photos)
    monkeypatch.setattr(media, "photo_chunks", lambda items, per: bulk.photo_chunks(items, 1))
    job, rows, boxed = bulk.Job("default"), tmp_path / "rows.csv", tmp_path / "boxed"
    with pytest.raises(KeyboardInterrupt):
        media.predict_media(job, folder, rows, boxed)
    assert not boxed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "rows.csv.partial"]
    assert len((tmp_path / "rows.csv.partial").read_text().splitlines()) == 1 + 2
    # Not started over silently; continued on request, without the copies (made whole only).
    with pytest.raises(FerlabError, match="--resume continues it"):
        media.checked_outputs(folder, rows, None, False, False)
    with pytest.raises(FerlabError, match="drop --annotate"):
        media.checked_outputs(folder, rows, boxed, False, False, resume=True)
    monkeypatch.setattr(bulk.Worker, "photos", real)
    media.predict_media(job, folder, rows, resume=True)
    media.predict_media(job, folder, tmp_path / "whole.csv", boxed)
    assert rows.read_text() == (tmp_path / "whole.csv").read_text()
    assert len(list(boxed.glob("*.jpg"))) == 5
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["boxed", "photos", "rows.csv", "whole.csv"]


def test_convert_into_a_full_disk_names_the_output_and_leaves_nothing(data, tmp_path, monkeypatch):
    import errno

    written = []
    real = Path.write_bytes

    def write_bytes(self, b):
        if len(written) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(self)
        return real(self, b)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    out = tmp_path / "work" / "out"
    r = run_cli("data", "convert", data, out, "--format", "folders")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{out}: could not be written: no space left on the device" in r.stderr
    assert written and not any((tmp_path / "work").iterdir())


def special_file(kind: str, path: Path) -> Path:
    import os
    import stat

    if kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
    else:
        os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_force_never_replaces_a_device_node_or_a_fifo(kind, finished_run, tmp_path):
    import os
    import stat

    from ferlab.atomic import write_bytes_atomic

    node = special_file(kind, tmp_path / "node")
    same = stat.S_ISCHR if kind == "device" else stat.S_ISFIFO
    for args in (
        ("export", finished_run, "--weights", node, "--force"),
        ("export", finished_run, "--onnx", node, "--force"),
        ("ensemble", finished_run, finished_run, "--out", node, "--force"),
        ("predict", finished_run, tmp_path / "none.png", "--out", node, "--force"),
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert (
            "not a regular file" in r.stderr
            or f"is a {'FIFO' if kind == 'fifo' else 'char'}" in r.stderr
        ), r.stderr
        assert same(os.lstat(node).st_mode), args
    link = tmp_path / "link.pt"
    link.symlink_to(node)
    with pytest.raises(FerlabError, match="exists and is a"):
        write_bytes_atomic(link, b"x")
    assert same(os.lstat(node).st_mode) and link.is_symlink()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def saved_with_card(net, card_dict: dict, path: Path) -> Path:
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "ferlab": card_dict}, path)
    return path


def test_a_small_file_naming_a_huge_network_is_refused_before_allocating(finished_run, tmp_path):
    from ferlab.inference import load_model

    model = load_model(finished_run)
    card = model.card.to_dict()
    huge = saved_with_card(
        model.model, card | {"model_args": card["model_args"] | {"widths": [100000]}},
        tmp_path / "huge.pt",
    )  # fmt: skip
    assert huge.stat().st_size < 200_000  # the 360 GB network it names would not fit anywhere
    with pytest.raises(FerlabError, match="does not fit its weights"):
        load_model(huge)
    r = run_cli("evaluate", huge, "--data", tmp_path, "--split", "val")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def ensemble_card(run: Path) -> tuple:
    from ferlab.export import ensemble_of
    from ferlab.inference import load_model

    net, card = ensemble_of([load_model(run), load_model(run)])
    return net, card.to_dict()


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda m: m | {"members": m["members"] * 10_000}, "lists 20000 ensemble members"),
        (lambda m: m | {"weights": [float("nan"), 1.0]}, "one finite, non-negative number"),
        (lambda m: m | {"weights": [float("inf"), 1.0]}, "one finite, non-negative number"),
        (lambda m: m | {"weights": [1e308, 1e308]}, "one finite, non-negative number"),
        (lambda m: m | {"weights": ["a", "b"]}, "one finite, non-negative number"),
        (lambda m: m | {"weights": [1.0, 1.0, 1.0]}, "one finite, non-negative number"),
        (lambda m: m | {"members": "cnn-baseline"}, "not a list of models"),
    ],
)
def test_a_hostile_ensemble_card_is_one_line(edit, says, finished_run, tmp_path):
    from ferlab.inference import load_model

    net, card = ensemble_card(finished_run)
    path = saved_with_card(net, card | {"model_args": edit(card["model_args"])}, tmp_path / "e.pt")
    with pytest.raises(FerlabError, match=says):
        load_model(path)


def test_nested_or_cyclic_ensemble_cards_are_one_line(finished_run, tmp_path):
    from ferlab.inference import load_model

    net, card = ensemble_card(finished_run)
    args = card["model_args"]
    nested = {"model": "ensemble", "model_args": args}
    for _ in range(500):  # deeper than torch.save can write
        nested = {"model": "ensemble", "model_args": {"members": [nested, nested]}}
    deep = card | {"model_args": args | {"members": [nested, args["members"][1]]}}
    cyclic_args = dict(args, members=list(args["members"]))
    cyclic_args["members"][0] = {"model": "ensemble", "model_args": cyclic_args}
    for i, bad in enumerate((deep, card | {"model_args": cyclic_args})):
        try:
            path = saved_with_card(net, bad, tmp_path / f"{i}.pt")
        except RecursionError:  # torch cannot save one that deep: it cannot reach a user either
            continue
        with pytest.raises(FerlabError, match="nested too deep, or in a cycle"):
            load_model(path)
    # An ONNX file's card is JSON: 3,000 levels fit in it.
    from ferlab.models.card import ModelCard

    for _ in range(2500):
        nested = {"model": "ensemble", "model_args": {"members": [nested]}}
    with pytest.raises(FerlabError, match="nested too deep, or in a cycle"):
        ModelCard.from_dict(card | {"model_args": args | {"members": [nested]}})


def test_nan_or_infinite_ensemble_weights_on_the_command_line_are_one_line(finished_run, tmp_path):
    for weights in ("nan,1", "inf,1", "1e308,1e308", "-1,2", "0,0"):
        r = run_cli("ensemble", finished_run, finished_run, "--weights", weights, "--out",
                    tmp_path / "e.pt")  # fmt: skip
        assert r.returncode == 2 and "finite, non-negative" in r.stderr, (weights, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "e.pt").exists()


def test_a_training_that_completes_no_epoch_leaves_no_folder(data, tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "--data", data, "--out", run, "--model", "cnn-small", "--epochs", "1",
                "--minutes", "1e-7", "--precision", "fp32")  # fmt: skip
    assert r.returncode == 2 and "before an epoch was completed" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not run.exists()


def test_ferplus_training_faces_without_a_label_are_one_line_and_leave_no_folder(tmp_path):
    from test_ferplus import write_ferplus

    no_majority = [0, 0, 0, 0, 0, 0, 0, 0, 10, 0]  # every vote "unknown": no label
    labelled = [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    write_ferplus(tmp_path / "fp", {"FER2013Train": [no_majority] * 12,
                                    "FER2013Valid": [labelled] * 3})  # fmt: skip
    with pytest.raises(FerlabError, match="no Training faces with a label"):
        train(tiny_config(tmp_path / "fp", tmp_path / "run", epochs=1, label_mode="majority"))
    assert not (tmp_path / "run").exists()


def test_an_interrupted_evaluate_out_leaves_nothing_and_the_rerun_works(
    finished_run, data, tmp_path, monkeypatch
):
    import ferlab.photos.photo_eval as evaluation  # what `ferlab evaluate` writes with

    real = evaluation.write_evaluation

    def write_then_stop(ev, folder):
        real(ev, folder)  # every file written, then the signal comes
        raise KeyboardInterrupt

    out = tmp_path / "eval"
    monkeypatch.setattr(evaluation, "write_evaluation", write_then_stop)
    r = run_cli("evaluate", finished_run, "--data", data, "--split", "val", "--out", out)
    assert r.returncode == 130 and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no hidden partial folder either
    monkeypatch.setattr(evaluation, "write_evaluation", real)
    r = run_cli("evaluate", finished_run, "--data", data, "--split", "val", "--out", out)
    assert r.returncode == 0 and (out / "eval.json").is_file(), r.stderr


def test_a_staged_folder_appears_whole_and_force_replaces_by_name(tmp_path):
    from ferlab.atomic import staged_folder

    dest = tmp_path / "set"
    with pytest.raises(KeyboardInterrupt), staged_folder(dest) as staging:
        (staging / "a.json").write_text("1")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with staged_folder(dest) as staging:
        (staging / "a.json").write_text("1")
        (staging / "b.png").write_text("2")
    (dest / "mine.txt").write_text("kept")
    with staged_folder(dest) as staging:
        (staging / "a.json").write_text("3")
    assert {p.name: p.read_text() for p in dest.iterdir()} == {
        "a.json": "3", "b.png": "2", "mine.txt": "kept"
    }  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


@pytest.mark.parametrize(
    "line, says",
    [
        ("epochs: 1.5", "must be a whole number, not 1.5"),
        ("epochs: .inf", "must be a whole number, not inf"),
        ("batch_size: 2.5", "--batch-size (batch_size in a config) must be a whole number"),
        ("model_args: [1, 2]", "must be a mapping of arguments, not [1, 2]"),
        ("seed: abc", "must be a whole number, not 'abc'"),
        ("val_fraction: '0.5'", "must be a finite number, not '0.5'"),
        ("lr: .nan", "--lr (lr in a config) must be a finite number, not nan"),
    ],
)
def test_a_config_with_wrong_typed_values_is_one_line(line, says, data, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"model: cnn-small\n{line}\n")
    r = run_cli("train", "--config", config, "--data", data, "--out", tmp_path / "run")
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (("saliency", "--per-class", "0"), "--per-class must be at least 1"),
        (("saliency", "--per-class", "-3"), "--per-class must be at least 1"),
        (("saliency", "--sample", "-5"), "--sample must be at least 1"),
        (("saliency", "--sample", "0"), "--sample must be at least 1"),
        (("filters", "--layer", "features.block1.act1", "--filters", "5-2"), "runs backwards"),
        (("filters", "--layer", "features.block1.act1", "--filters", "0-99999999"), "has filters"),
        (("filters", "--layer", "features.block1.act1", "--steps", "0"), "--steps must be"),
        (("filters", "--layer", "features.block1.act1", "--steps", "-5"), "--steps must be"),
        (("check", "--n", "0"), "--n must be at least 1"),
    ],
)
def test_explain_counts_out_of_range_are_one_line_and_write_nothing(
    args, says, finished_run, data, tmp_path
):
    kind, *rest = args
    needs_data = () if kind == "filters" else ("--data", data)
    out = tmp_path / "out"
    r = run_cli("explain", kind, finished_run, *needs_data, *rest, "--out", out)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_resumed_run_records_each_machine_and_a_precision_change(finished_run, data, tmp_path):
    import json

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    env = json.loads((run / "env.json").read_text())
    assert env["precision"] == "32-true" and env["cpu_model"]
    # As if it had begun on a CPU where --precision auto chose bf16.
    (run / "env.json").write_text(json.dumps(env | {"precision": "bf16-mixed"}))
    r = run_cli("train", "--data", data, "--out", run, "--resume", "--extend-epochs", "1")
    assert r.returncode == 0, r.stderr
    assert "resumed in 32-true" in r.stderr and "began in bf16-mixed" in r.stderr
    resumed = json.loads((run / "env.json").read_text())["resumed"]
    assert len(resumed) == 1 and resumed[0]["precision"] == "32-true"
    assert resumed[0]["cpu_model"] == env["cpu_model"]


def test_force_never_writes_over_the_commands_own_inputs(finished_run, data, tmp_path):
    best = finished_run / "checkpoints" / "best.ckpt"
    before = best.read_bytes()
    r = run_cli("ensemble", finished_run, finished_run, "--out", best, "--force")
    assert r.returncode == 2 and "is the member" in r.stderr and best.read_bytes() == before
    metrics = (finished_run / "metrics.json").read_bytes()
    r = run_cli("ship", finished_run, "--as", "default", "--data", data, "--record", finished_run)
    assert r.returncode == 2 and "is the run itself" in r.stderr
    assert (finished_run / "metrics.json").read_bytes() == metrics


def test_empty_names_are_refused_not_read_as_none(finished_run, data, tmp_path):
    r = run_cli("train", "--recipe", "", "--data", data, "--out", tmp_path / "run")
    assert r.returncode == 2 and "unknown recipe ''" in r.stderr and not (tmp_path / "run").exists()
    r = run_cli("evaluate", finished_run, "--data", data, "--detector", "")
    assert r.returncode == 2 and "unknown detector ''" in r.stderr, r.stderr


def test_a_damaged_video_is_one_line_without_ffmpegs_own(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(range(256)) * 12)
    r = run_cli("predict", "default", bad, isolated=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"ferlab: error: {bad}: not a readable video"
    ], r.stderr


def test_sigterm_while_the_interpreter_exits_ends_it_without_a_traceback(tmp_path):
    import subprocess
    import sys

    code = (
        "import atexit, os, signal, time\n"
        "from ferlab.commands.cli import main\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(2)))\n"
        "main(['models'])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and r.returncode == -15, (r.returncode, r.stderr)


def test_the_command_line_loads_without_the_training_stack():
    import subprocess
    import sys

    # nor the photo path's: a command loads what it runs, so `--help` and `--version` are quick
    heavy = ("torch", "lightning", "captum", "kornia", "gradio", "matplotlib", "onnxruntime",
             "cv2", "numpy", "PIL")  # fmt: skip
    code = (
        "import sys; import ferlab.commands.cli; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)


def test_version_is_printed_by_the_command():
    import ferlab

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ferlab {ferlab.__version__}"


def test_a_stop_signal_a_library_swallowed_still_keeps_the_result_from_appearing(tmp_path):
    from ferlab.atomic import request_stop, staged_folder, write_bytes_atomic

    try:
        request_stop()  # as the SIGTERM handler does, its KeyboardInterrupt lost in a bare except
        with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "set") as staging:
            (staging / "a.json").write_text("1")
        with pytest.raises(KeyboardInterrupt):
            write_bytes_atomic(tmp_path / "file", b"x")
        assert list(tmp_path.iterdir()) == []
    finally:
        request_stop(False)
    write_bytes_atomic(tmp_path / "file", b"x")
    assert (tmp_path / "file").read_bytes() == b"x"
