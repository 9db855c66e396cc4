"""Exported weights and ONNX, and the `default` model shipped inside the package."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import fer_data, run_cli, synthetic_faces, tiny_config, tiny_run, write_tree
from ferlab.data import EMOTIONS, load
from ferlab.data.splits import ValidationSplit
from ferlab.errors import FerlabError
from ferlab.export import ONNX_INPUT, export_onnx, export_weights, onnx_card
from ferlab.inference import PACKAGE_MODELS, Predictor, load_model
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


@pytest.mark.parametrize(
    "name, recipe, model",
    [("default", "flagship@", "cnn-baseline"), ("fast", "fast@", "cnn-small")],
)
def test_package_models_are_shipped_in_the_installed_package(name, recipe, model):
    import ferlab
    from ferlab.inference import WEIGHTS_DIR, shipped_models

    path = WEIGHTS_DIR / f"{name}.pt"
    assert name in shipped_models() and path.is_file()
    assert path.stat().st_size <= 20e6
    assert path.is_relative_to(Path(ferlab.__file__).parent)
    card = load_model(name).card
    # The card describes the architecture the weights fit, parameter for parameter.
    expected = card.build().state_dict()
    state = torch.load(path, weights_only=True)["state_dict"]
    assert {k.removeprefix("model."): tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }
    assert card.model == model and card.classes == tuple(EMOTIONS)
    assert card.preprocess.equalize_hist is True
    assert card.recipe.startswith(recipe)
    assert card.metrics["recipe"] == card.recipe and card.train_hours > 0
    assert len(card.data_fingerprint) >= 16
    for split in ("val", "PublicTest"):
        assert 0.5 < card.metrics[split]["accuracy"] < 1


def recorded_data(name: str) -> Path | None:
    """The data a shipped model's PublicTest figure was measured on: FERLAB_DATA (FER2013) for
    FER2013's classes, the shared ferplus.zip beside it for FER+'s."""
    if fer_data() is None:
        return None
    if tuple(load_model(name).classes) == tuple(EMOTIONS):
        return fer_data()
    beside = fer_data().parent / "ferplus.zip"
    return beside if beside.is_file() else None


@pytest.mark.slow
@pytest.mark.parametrize("name", PACKAGE_MODELS)
def test_shipped_models_classify_publictest_as_recorded(name):
    data = recorded_data(name)
    if data is None:
        pytest.skip("FERLAB_DATA not set (or no ferplus.zip beside it)")
    loaded = load_model(name)
    faces, _ = load(data, preprocess=loaded.preprocess)
    test = faces.split("PublicTest")
    if test.votes is not None:  # FER+: scored on its majority labels
        test = test.only_labelled()
    accuracy = float((loaded.probabilities(test).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(loaded.card.metrics["PublicTest"]["accuracy"], abs=1e-3)


@pytest.mark.parametrize("name", list_models(standalone=True))
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
    x = predictor.input_batch(faces).contiguous().numpy()
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


def test_onnx_and_torch_runtimes_give_the_same_probabilities(trained, monkeypatch):
    run, _ = trained
    on_torch, on_onnx = load_model(run, runtime="torch"), load_model(run, runtime="onnx")
    assert (on_torch.runtime, on_onnx.runtime) == ("torch", "onnx")
    assert on_onnx.model is not None  # explanation still has the torch network
    faces = synthetic_faces(per_class=3, seed=5).images
    for tta in (False, True):
        np.testing.assert_allclose(
            on_onnx.probabilities(faces, tta), on_torch.probabilities(faces, tta), atol=1e-5
        )
    # The graph is exported once per weights and then read from the cache.
    from ferlab import runtime

    def no_export(model):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "onnx_graph", no_export)
    again = load_model(run, runtime="onnx")
    np.testing.assert_array_equal(again.probabilities(faces), on_onnx.probabilities(faces))


def test_a_crop_model_sees_its_native_crops_under_tta_in_both_runtimes():
    from ferlab.inference import TTA_MODE, probabilities
    from ferlab.runtime import TorchBackend, onnx_backend

    torch.manual_seed(0)
    model = create("cnn-baseline", widths=[8, 16, 16, 32], input_crop=44).eval()
    faces = synthetic_faces(per_class=2, seed=6).images
    x = torch.from_numpy(faces).float().div(255).unsqueeze(1)
    with torch.no_grad():  # centre and corner 44x44 crops, and their mirror images
        crops = [
            x[..., t : t + 44, c : c + 44] for t, c in ((2, 2), (0, 0), (0, 4), (4, 0), (4, 4))
        ]
        views = crops + [v.flip(-1) for v in crops]
        expected = torch.stack([torch.softmax(model(v), 1) for v in views]).mean(0).numpy()
    for backend, atol in ((TorchBackend(model), 1e-6), (onnx_backend(model), 1e-5)):
        got = probabilities(backend, faces, TTA_MODE, native=44)
        np.testing.assert_allclose(got, expected, atol=atol)


def test_runtime_choice_on_the_command_line(trained, tmp_path):
    run, data = trained
    reports = {}
    for runtime in ("torch", "onnx"):
        r = run_cli(
            "evaluate", run, "--data", data, "--split", "PublicTest", "--json",
            "--runtime", runtime,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        reports[runtime] = json.loads(r.stdout)
    assert reports["onnx"]["confusion"] == reports["torch"]["confusion"]
    r = run_cli("evaluate", run, "--data", data, "--split", "PublicTest", "--runtime", "tflite")
    assert r.returncode == 2 and "unknown runtime 'tflite'" in r.stderr
    assert "Traceback" not in r.stderr


def test_int8_export_runs_in_onnx_runtime_and_keeps_its_card(trained, tmp_path):
    import onnx

    run, data = trained
    path = tmp_path / "int8.onnx"
    r = run_cli("export", run, "--onnx", path, "--int8")
    assert r.returncode == 2 and "--data" in r.stderr and not path.exists()
    r = run_cli("export", run, "--onnx", path, "--int8", "--data", data)
    assert r.returncode == 0, r.stderr[-2000:]
    graph = onnx.load(str(path))
    assert any(node.op_type == "QuantizeLinear" for node in graph.graph.node)
    props = {p.key: p.value for p in graph.metadata_props}
    how = json.loads(props["ferlab.quantization"])
    assert how["calibration_faces"] > 0 and "accuracy" in how["chosen_by"]  # labels were given
    assert onnx_card(path).model == "cnn-baseline"
    # The card says which of the two graphs was kept, and the graph is that one.
    first = next(node for node in graph.graph.node if node.op_type == "Conv")
    made_by = {o: node.op_type for node in graph.graph.node for o in node.output}
    assert (made_by[first.input[0]] != "DequantizeLinear") == ("first conv in fp32" in how["int8"])
    fp32, int8 = load_model(run), load_model(path, runtime="onnx")
    from ferlab.evaluation import select_split

    val = select_split(fp32, data, "val")
    agree = (fp32.probabilities(val).argmax(1)
             == int8.probabilities(val).argmax(1)).mean()  # fmt: skip
    assert agree == pytest.approx(how["agreement_with_fp32"], abs=2e-3)
    faces = synthetic_faces(per_class=6, seed=7).images
    agree = (fp32.probabilities(faces).argmax(1) == int8.probabilities(faces).argmax(1)).mean()
    assert agree >= 0.9
    r = run_cli("evaluate", path, "--data", data, "--split", "PublicTest", "--runtime", "torch")
    assert r.returncode == 2 and "--runtime onnx" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", path, "--data", data, "--split", "PublicTest", "--runtime", "onnx")
    assert r.returncode == 0 and "accuracy" in r.stdout, r.stderr[-2000:]
    # Commands that need the torch network say so in words that hold for them: they have no
    # --runtime, and the way out is the run the file was exported from.
    commands = [
        ("layers", path),
        ("export", path, "--onnx", path.with_suffix(".2.onnx")),
        ("explain", "saliency", path, "--data", data, "--out", path.parent / "s"),
    ]
    for args in commands:
        r = run_cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, args
        assert "run folder or checkpoint it was exported from" in r.stderr, args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_int8_export_of_a_network_without_convs(tmp_path):
    import onnx

    from ferlab.export import export_onnx_int8
    from ferlab.training import train

    data = write_tree(synthetic_faces(per_class=8, seed=5), tmp_path / "data")
    dense = dict(depth=2, width=32)
    train(tiny_config(data, tmp_path / "run", model="dnn-study", model_args=dense, epochs=1))
    fp32 = load_model(tmp_path / "run")
    faces = load(data)[0]
    path = export_onnx_int8(fp32, tmp_path / "dense.onnx", faces, faces.labels)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert "every layer in int8" in json.loads(props["ferlab.quantization"])["int8"]
    assert load_model(path, runtime="onnx").probabilities(faces).shape == (len(faces), 7)


@pytest.mark.slow
@pytest.mark.skipif(fer_data() is None, reason="FERLAB_DATA not set")
@pytest.mark.parametrize("name", ["default", "fast"])
def test_int8_shipped_models_agree_with_fp32_on_real_faces(name, tmp_path):
    from ferlab.evaluation import select_split
    from ferlab.export import export_onnx_int8

    fp32 = load_model(name, runtime="torch")
    val = select_split(fp32, fer_data(), "val")
    path = export_onnx_int8(fp32, tmp_path / f"{name}-int8.onnx", val, val.labels)
    public = select_split(fp32, fer_data(), "PublicTest").select(np.arange(1500))
    int8 = load_model(path, runtime="onnx")
    agree = (fp32.probabilities(public).argmax(1)
             == int8.probabilities(public).argmax(1)).mean()  # fmt: skip
    assert agree >= 0.98


def test_an_ensemble_is_the_mean_of_its_members_and_one_onnx_graph(trained, tmp_path, monkeypatch):
    from ferlab.training import train

    run, data = trained
    # Another network on the same split, at another input crop: a member that differs.
    other = tmp_path / "other"
    resnet = {"stem": 8, "widths": [8, 16], "depths": [1, 1]}
    train(tiny_config(data, other, model="resnet-fer", model_args=resnet, epochs=2, crop=40,
                      split_file=str(run / "split.json")))  # fmt: skip
    path = tmp_path / "ens.pt"
    r = run_cli("ensemble", run, other, "--out", path)
    assert r.returncode == 0, r.stderr
    a, b, ens = load_model(run), load_model(other), load_model(path)
    assert [m["model"] for m in ens.card.model_args["members"]] == ["cnn-baseline", "resnet-fer"]
    assert ens.card.model_args["members"][1]["model_args"]["input_crop"] == 40
    faceset = synthetic_faces(per_class=3, seed=11)
    faces = faceset.images
    mean = (a.probabilities(faces) + b.probabilities(faces)) / 2
    np.testing.assert_allclose(ens.probabilities(faces), mean, rtol=0, atol=1e-6)
    r = run_cli("evaluate", path, "--data", data, "--split", "val", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["n"] > 0, r.stderr
    # With TTA, each member sees its own views (under its own crop).
    mean_tta = (a.probabilities(faces, tta=True) + b.probabilities(faces, tta=True)) / 2
    np.testing.assert_allclose(ens.probabilities(faces, tta=True), mean_tta, rtol=0, atol=1e-6)
    # A teacher: a student of the same split distils from its per-member TTA answers.
    from ferlab.training.distill import teacher_log_probs

    soft = teacher_log_probs(str(path), faceset, tta=True)
    np.testing.assert_allclose(np.exp(soft), ens.probabilities(faceset, tta=True), atol=1e-5)
    student = train(tiny_config(data, tmp_path / "student", epochs=1, teacher=str(path),
                                teacher_tta=True, split_file=str(run / "split.json")))  # fmt: skip
    assert student.stopped_by == "epochs"
    assert f"teacher: {path}" in (tmp_path / "student" / "config.yaml").read_text()
    # Exported as one graph, it agrees with PyTorch.
    assert run_cli("export", path, "--onnx", tmp_path / "ens.onnx").returncode == 0
    onnx = load_model(tmp_path / "ens.onnx", runtime="onnx")
    np.testing.assert_allclose(onnx.probabilities(faces), ens.probabilities(faces), atol=1e-5)
    # Weighted: 3 to 1.
    r = run_cli("ensemble", run, other, "--out", tmp_path / "w.pt", "--weights", "3,1")
    assert r.returncode == 0, r.stderr
    weighted = load_model(tmp_path / "w.pt").probabilities(faces)
    expected = (3 * a.probabilities(faces) + b.probabilities(faces)) / 4
    np.testing.assert_allclose(weighted, expected, rtol=0, atol=1e-6)
    # Weights chosen on the shared validation split: the written ensemble scores there what
    # the choice says it scores, and its members run in the runtime asked for.
    import ferlab.inference

    loads = []  # every checkpoint read, whoever loads it
    real_read = ferlab.inference.read_checkpoint
    monkeypatch.setattr(
        ferlab.inference,
        "read_checkpoint",
        lambda *a, **k: loads.append(a[0]) or real_read(*a, **k),
    )
    r = run_cli("ensemble", run, other, "--out", tmp_path / "c.pt", "--choose-weights",
                "--data", data)  # fmt: skip
    assert r.returncode == 0 and "chosen on validation" in r.stdout, r.stderr
    members = [ferlab.inference.resolve_checkpoint(m) for m in (run, other)]
    assert sorted(map(str, loads)) == sorted(map(str, members))  # each member loads once
    monkeypatch.setattr(ferlab.inference, "read_checkpoint", real_read)
    chosen = load_model(tmp_path / "c.pt", runtime="onnx")
    picked = chosen.card.metrics["weights_chosen"]
    assert chosen.card.model_args["weights"] == picked["weights"]
    r = run_cli("evaluate", tmp_path / "c.pt", "--data", data, "--split", "val", "--json")
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(picked["accuracy"], abs=1e-9)
    assert {b.name for _, b, _ in chosen.members} == {"onnx"}
    torch_tta = load_model(tmp_path / "c.pt", runtime="torch").probabilities(faces, tta=True)
    np.testing.assert_allclose(chosen.probabilities(faces, tta=True), torch_tta, atol=1e-5)


def test_an_ensemble_card_missing_a_member_is_one_line(trained, tmp_path):
    from ferlab.export import ensemble_of
    from ferlab.training import train

    run, data = trained
    net, card = ensemble_of([load_model(run), load_model(run)])
    # The card lists two members; the weights of one are gone.
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("members.1.")}
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "ferlab":
                card.to_dict()}, tmp_path / "cut.pt")  # fmt: skip
    r = run_cli("evaluate", tmp_path / "cut.pt", "--data", data, "--split", "val")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the card lists 2 ensemble members, the file holds weights for 1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # Members selected on other splits, or a lone member, are refused.
    elsewhere = tmp_path / "elsewhere"
    train(tiny_config(data, elsewhere, epochs=1, split_seed=5))
    r = run_cli("ensemble", run, elsewhere, "--out", tmp_path / "x.pt")
    assert r.returncode == 2 and "one saved validation split" in r.stderr
    r = run_cli("ensemble", run, "--out", tmp_path / "y.pt")
    assert r.returncode == 2 and "at least two members" in r.stderr
    r = run_cli("ensemble", run, run, "--out", tmp_path / "z.pt", "--choose-weights")
    assert r.returncode == 2 and "needs --data" in r.stderr


@pytest.mark.parametrize("harm", ["damaged", "substituted"])
def test_a_damaged_or_substituted_cached_graph_is_exported_again(harm, tmp_path, monkeypatch):
    from ferlab.runtime import TorchBackend, onnx_backend, weights_key

    monkeypatch.setenv("FERLAB_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = create("cnn-baseline", widths=[8, 16, 16, 32]).eval()
    other = create("cnn-baseline", widths=[8, 16, 16, 32]).eval()  # other weights, same shape
    faces = torch.from_numpy(synthetic_faces(per_class=2, seed=1).images).float().div(255)
    batch = faces.unsqueeze(1).numpy()
    expected = TorchBackend(model).logits(batch)
    onnx_backend(model)
    graph = tmp_path / "cache" / "onnx" / f"{weights_key(model)}.onnx"
    if harm == "damaged":
        graph.write_bytes(graph.read_bytes()[:500])
    else:  # another model's graph, with its hash recorded beside it: it answers otherwise
        onnx_backend(other)
        theirs = graph.with_name(f"{weights_key(other)}.onnx")
        shutil.copy(theirs, graph)
        shutil.copy(theirs.with_suffix(".sha256"), graph.with_suffix(".sha256"))
    np.testing.assert_allclose(onnx_backend(model).logits(batch), expected, atol=1e-4)
    np.testing.assert_allclose(onnx_backend(model).logits(batch), expected, atol=1e-4)  # mended


@pytest.mark.parametrize("name", PACKAGE_MODELS)
def test_each_shipped_model_ships_a_graph_that_answers_as_its_weights(name):
    graph = load_model(name, runtime="onnx")
    assert graph.model is None and graph.runtime == "onnx"  # no torch network is built
    net = load_model(name, runtime="torch")
    assert graph.card == net.card and graph.card.split is not None
    faces = synthetic_faces(per_class=3, seed=8)
    for tta in (False, True):
        np.testing.assert_allclose(
            graph.probabilities(faces, tta), net.probabilities(faces, tta), atol=1e-5
        )


def test_a_shipped_graph_of_other_weights_is_not_used(tmp_path):
    from ferlab.inference import WEIGHTS_DIR
    from ferlab.runtime import shipped_graph

    shutil.copy(WEIGHTS_DIR / "default.pt", tmp_path / "default.pt")
    assert shipped_graph(tmp_path / "default.pt") is None  # no graph beside it
    shutil.copy(WEIGHTS_DIR / "fast.onnx", tmp_path / "default.onnx")
    assert shipped_graph(tmp_path / "default.pt") is None  # a graph of other weights
    shutil.copy(WEIGHTS_DIR / "default.onnx", tmp_path / "default.onnx")
    backend, card = shipped_graph(tmp_path / "default.pt")
    assert card["model"] == "cnn-baseline" and backend.name == "onnx"
