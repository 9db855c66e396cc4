"""Exported weights and ONNX, and the `default` model shipped inside the package."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import fer_data, run_cli, synthetic_faces, tiny_run
from ferlab.checkpoint import PACKAGE_WEIGHTS, load_model, predict_proba
from ferlab.data import EMOTIONS, load
from ferlab.data.splits import ValidationSplit
from ferlab.export import ONNX_INPUT, export_onnx, onnx_meta
from ferlab.models import create


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("export"), per_class=12, seed=3, epochs=3)


def test_weights_file_rebuilds_the_model_without_its_run(trained, tmp_path):
    run, data = trained
    r = run_cli("export", run, "--weights", tmp_path / "w.pt")
    assert r.returncode == 0, r.stderr
    moved = tmp_path / "elsewhere" / "w.pt"
    moved.parent.mkdir()
    shutil.move(tmp_path / "w.pt", moved)
    original, shipped = load_model(run), load_model(moved)
    faces = synthetic_faces(per_class=2, seed=9).images
    np.testing.assert_array_equal(
        predict_proba(original.model, faces), predict_proba(shipped.model, faces)
    )
    # The validation split travels with the weights, so `--split val` works without the run.
    saved = ValidationSplit.load(run / "split.json")
    assert ValidationSplit(**shipped.meta["validation_split"]) == saved
    r = run_cli("evaluate", moved, "--data", data, "--split", "val", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == len(saved.hashes)
    # Never replaced silently.
    r = run_cli("export", run, "--weights", moved)
    assert r.returncode == 2 and "exists" in r.stderr


def test_onnx_round_trip_matches_pytorch(trained, tmp_path):
    run, _ = trained
    loaded = load_model(run)
    path = export_onnx(loaded, tmp_path / "m.onnx")
    assert onnx_meta(path)["classes"] == list(EMOTIONS)
    session = ort.InferenceSession(str(path))
    for batch in (1, 5, 33):  # the batch axis is dynamic
        x = torch.rand(batch, 1, 48, 48)
        with torch.no_grad():
            expected = loaded.model(x).numpy()
        got = session.run(None, {ONNX_INPUT: x.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_export_needs_a_target_and_a_model(trained, tmp_path):
    run, _ = trained
    r = run_cli("export", run)
    assert r.returncode == 2 and "nothing to export" in r.stderr
    r = run_cli("export", tmp_path / "missing", "--onnx", tmp_path / "m.onnx")
    assert r.returncode == 2 and "no such run folder" in r.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_default_is_shipped_in_the_installed_package():
    import ferlab

    assert PACKAGE_WEIGHTS.is_file()
    assert PACKAGE_WEIGHTS.stat().st_size <= 20e6
    assert PACKAGE_WEIGHTS.is_relative_to(Path(ferlab.__file__).parent)
    loaded = load_model("default")
    meta = loaded.meta
    # The metadata describes the architecture the weights fit, parameter for parameter.
    expected = create(meta["model"], **meta["model_args"]).state_dict()
    state = torch.load(PACKAGE_WEIGHTS, weights_only=True)["state_dict"]
    assert {k.removeprefix("model."): tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }
    assert meta["classes"] == list(EMOTIONS)
    assert meta["preprocess"]["equalize_hist"] is True
    assert meta["recipe"].startswith("flagship@")
    assert len(meta["data_fingerprint"]) >= 16
    for split in ("val", "PublicTest"):
        assert 0.5 < meta["metrics"][split]["accuracy"] < 1


@pytest.mark.skipif(fer_data() is None, reason="FERLAB_DATA not set")
def test_default_classifies_fer2013_as_recorded():
    loaded = load_model("default")
    faces, _ = load(fer_data(), preprocess=loaded.preprocess)
    test = faces.split("PublicTest")
    accuracy = float((predict_proba(loaded.model, test.images).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(loaded.meta["metrics"]["PublicTest"]["accuracy"], abs=1e-3)
