"""Exported weights and ONNX, and the `default` model shipped inside the package."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import fer_data, run_cli, synthetic_faces, tiny_run
from ferlab.data import EMOTIONS, load
from ferlab.data.splits import ValidationSplit
from ferlab.errors import FerlabError
from ferlab.export import ONNX_INPUT, export_onnx, export_weights, onnx_card
from ferlab.inference import PACKAGE_WEIGHTS, Predictor, load_model
from ferlab.models import create, list_models
from ferlab.models.card import ModelCard


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
    np.testing.assert_array_equal(original.probabilities(faces), shipped.probabilities(faces))
    # The validation split travels with the weights, so `--split val` works without the run.
    saved = ValidationSplit.load(run / "split.json")
    assert ValidationSplit(**shipped.card.split) == saved
    assert shipped.card.train_hours is not None and shipped.card.epochs == original.card.epochs
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
    assert onnx_card(path) == replace(loaded.card, split=None)
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
    card = load_model("default").card
    # The card describes the architecture the weights fit, parameter for parameter.
    expected = card.build().state_dict()
    state = torch.load(PACKAGE_WEIGHTS, weights_only=True)["state_dict"]
    assert {k.removeprefix("model."): tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }
    assert card.classes == tuple(EMOTIONS)
    assert card.preprocess.equalize_hist is True
    assert card.recipe.startswith("flagship@")
    assert len(card.data_fingerprint) >= 16
    for split in ("val", "PublicTest"):
        assert 0.5 < card.metrics[split]["accuracy"] < 1


@pytest.mark.skipif(fer_data() is None, reason="FERLAB_DATA not set")
def test_default_classifies_fer2013_as_recorded():
    loaded = load_model("default")
    faces, _ = load(fer_data(), preprocess=loaded.preprocess)
    test = faces.split("PublicTest")
    accuracy = float((loaded.probabilities(test.images).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(loaded.card.metrics["PublicTest"]["accuracy"], abs=1e-3)


@pytest.mark.parametrize("name", list_models())
def test_card_and_weights_rebuild_every_registered_model(name, tmp_path):
    torch.manual_seed(0)
    model = create(name).eval()
    if model.accepts_crops:  # the crop travels in the card too
        model = create(name, input_crop=44).eval()
    card = ModelCard(name, model.model_args, tuple(EMOTIONS))
    with torch.no_grad():  # BatchNorm statistics other than the initial ones
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    export_weights(model, card, tmp_path / "w.pt")
    rebuilt = load_model(tmp_path / "w.pt")
    assert rebuilt.card == card and rebuilt.model.input_crop == model.input_crop
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.model(x), model(x), rtol=0, atol=0)


def test_a_crop_trained_model_exported_to_onnx_gives_the_same_probabilities(tmp_path):
    model = create("cnn-baseline", widths=[8, 16, 16, 32], input_crop=44).eval()
    predictor = Predictor(model, ModelCard("cnn-baseline", model.model_args, tuple(EMOTIONS)))
    path = export_onnx(predictor, tmp_path / "crop.onnx")
    assert onnx_card(path).input_crop == 44
    faces = synthetic_faces(per_class=2, seed=4).images  # whole 48x48 faces in
    x = predictor.tensor(predictor.prepared(faces)).contiguous().numpy()
    logits = ort.InferenceSession(str(path)).run(None, {ONNX_INPUT: x})[0]
    got = torch.softmax(torch.from_numpy(logits), 1).numpy()
    np.testing.assert_allclose(got, predictor.probabilities(faces), atol=1e-5)


def test_a_card_with_an_unknown_field_or_a_whole_face_model_with_a_crop_is_refused():
    with pytest.raises(FerlabError, match="unknown fields colour"):
        ModelCard.from_dict(
            {"model": "cnn-baseline", "model_args": {}, "classes": ["a"]} | {"colour": 1}
        )
    with pytest.raises(FerlabError, match="whole 48x48 faces only"):
        create("dnn-study", depth=2, width=8, input_crop=44)
