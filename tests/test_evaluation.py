import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import run_cli, synthetic_faces, tiny_run
from ferlab.data import EMOTIONS, convert
from ferlab.evaluation import (
    classification_report,
    confusion_counts,
    most_confused,
    normalize_rows,
)
from ferlab.inference import load_model, probabilities, tta_views
from ferlab.runtime import TorchBackend


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ev"), per_class=20, seed=2, epochs=5)


def test_confusion_and_metrics_match_a_hand_computed_case():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 0, 1, 2, 2])
    counts = confusion_counts(y_true, y_pred, 3)
    assert counts.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(
        normalize_rows(counts), [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]]
    )
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    # b: precision 1/2 (1 of 2 predicted b), recall 1/2, f1 1/2; c: precision 1/2, recall 1
    assert r["per_class"]["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert r["per_class"]["c"]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert r["per_class"]["a"]["precision"] == pytest.approx(1.0)
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_empty_class_row_stays_zero():
    counts = np.array([[3, 1], [0, 0]])
    assert normalize_rows(counts).tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_most_confused_uses_the_threshold():
    m = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05], [0.3, 0.0, 0.7]])
    rows = most_confused(m, ["x", "y", "z"], threshold=0.1)
    assert rows[0]["confused_with"] == [
        {"emotion": "y", "rate": 0.2},
        {"emotion": "z", "rate": 0.1},
    ]
    assert rows[1]["confused_with"] == []
    assert rows[2]["confused_with"][0]["emotion"] == "x"


def test_tta_averages_flipped_and_cropped_views(trained):
    run, _ = trained
    model = load_model(run).model
    backend = TorchBackend(model)
    faces = synthetic_faces(per_class=1).images
    x = torch.from_numpy(faces).float().div(255).unsqueeze(1)
    views = tta_views(x.numpy(), "flip+crops")
    assert len(tta_views(x.numpy(), "flip")) == 2 and len(views) == 10
    assert all(v.shape == x.shape for v in views)
    with torch.no_grad():
        manual = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2
    np.testing.assert_allclose(probabilities(backend, faces, "flip"), manual.numpy(), atol=1e-5)
    np.testing.assert_allclose(probabilities(backend, faces, "flip+crops").sum(1), 1, atol=1e-5)


def test_evaluate_json_schema_and_outputs(trained, tmp_path):
    run, data = trained
    r = run_cli(
        "evaluate", run, "--data", data, "--split", "PublicTest", "--json", "--out", tmp_path / "ev"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert list(d) == [
        "model",
        "split",
        "n",
        "accuracy",
        "majority_accuracy",
        "macro_f1",
        "labels",
        "per_class",
        "confusion",
        "tta",
    ]
    assert d["n"] == 140 and d["labels"] == list(EMOTIONS) and d["tta"] is None
    assert np.array(d["confusion"]).sum() == 140
    assert set(d["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    for name in (
        "eval.json",
        "confusion.png",
        "most_confused.md",
        "most_confused.json",
        "predictions.csv",
    ):
        assert (tmp_path / "ev" / name).is_file()
    val = run_cli("evaluate", run, "--data", data, "--split", "val", "--json", "--tta")
    assert val.returncode == 0, val.stderr
    assert json.loads(val.stdout)["n"] == 28 and json.loads(val.stdout)["tta"] == "flip+crops"


def test_predict_then_evaluate_round_trip(trained, tmp_path):
    run, data = trained
    r = run_cli("predict", run, data / "test", "--out", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    # 48x48 faces are classified as they are (no detection): one row each, box = whole image.
    assert len(rows) == 140 and list(rows[0])[:7] == ["file", "face", "x", "y", "w", "h", "emotion"]
    assert {(r["x"], r["y"], r["w"], r["h"]) for r in rows} == {("0", "0", "48", "48")}
    correct = [row["emotion"] == row["file"].split("/")[-2] for row in rows]
    ev = run_cli("evaluate", run, "--data", data, "--split", "PublicTest", "--json")
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(np.mean(correct))


def test_kaggle_submission_from_test_csv(trained, tmp_path):
    run, data = trained
    from ferlab.data import RAW, load

    faces, _ = load(data, preprocess=RAW)
    convert(faces, "ntu-csv", tmp_path / "ntu")
    r = run_cli("predict", run, tmp_path / "ntu" / "test.csv", "--out", tmp_path / "sub.csv")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == 141
    assert [int(x.split(",")[0]) for x in lines[1:]] == list(range(140))
    assert all(0 <= int(x.split(",")[1]) < 7 for x in lines[1:])


def test_predict_reports_bad_files_and_keeps_good_rows(trained, tmp_path):
    run, _ = trained
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_faces(per_class=1).images[i]).save(folder / f"f{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    r = run_cli("predict", run, folder, "--out", tmp_path / "p.csv")
    assert r.returncode == 2 and "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 4


@pytest.mark.parametrize("case", ["missing_split", "no_checkpoint", "unlabeled"])
def test_evaluate_bad_input(trained, tmp_path, case):
    run, data = trained
    if case == "missing_split":
        args = [run, "--data", data, "--split", "PrivateTest"]
    elif case == "no_checkpoint":
        (tmp_path / "empty_run").mkdir()
        args = [tmp_path / "empty_run", "--data", data, "--split", "PublicTest"]
    else:
        from ferlab.data import RAW, load

        convert(load(data, preprocess=RAW)[0], "ntu-csv", tmp_path / "ntu")
        args = [run, "--data", tmp_path / "ntu" / "test.csv"]
    r = run_cli("evaluate", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_compare_runs(trained, tmp_path):
    run, _ = trained
    r = run_cli("compare", run, run, "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "cmp" / "compare.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| run | cnn-baseline |")]
    assert len(rows) == 2 and "is best on validation" in md
    assert (tmp_path / "cmp" / "curves.png").is_file()
    assert "Validation split (the same for every run): " in md


def test_compare_and_evaluate_refuse_what_the_run_was_not_selected_on(trained, tmp_path):
    from conftest import tiny_config, write_tree
    from ferlab.training import train

    run, data = trained
    other = tmp_path / "other"
    train(tiny_config(data, other, epochs=1, split_seed=5))  # another validation split
    r = run_cli("compare", run, other, "--out", tmp_path / "cmp")
    assert r.returncode == 2 and "different validation splits" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "cmp" / "compare.md").exists()
    # "Its validation split" of other data is refused; other data with an explicit split is not.
    elsewhere = write_tree(synthetic_faces(per_class=20, seed=9), tmp_path / "elsewhere")
    r = run_cli("evaluate", run, "--data", elsewhere, "--split", "val")
    assert r.returncode == 2 and "not among its Training faces" in r.stderr
    r = run_cli("evaluate", run, "--data", elsewhere, "--split", "PublicTest")
    assert r.returncode == 0, r.stderr


def test_probabilities_rows_sum_to_one(trained):
    backend = load_model(trained[0]).backend
    probs = probabilities(backend, synthetic_faces(per_class=2).images, batch_size=5)
    assert probs.shape == (28, 7)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_tta_of_a_whole_face_model_includes_the_unaltered_face():
    x = np.random.default_rng(0).random((2, 1, 48, 48), dtype=np.float32)
    views = tta_views(x, "flip+crops")
    eq = np.array_equal
    assert len(views) == 10 and eq(views[0], x) and eq(views[5], x[..., ::-1])
    # A crop model sees the centre 44x44 of each view: there, the centre and the corners.
    native = [v[..., 2:46, 2:46] for v in tta_views(x, "flip+crops", native=44)]
    crops = [x[..., t : t + 44, left : left + 44] for t, left in ((2, 2), (0, 0), (0, 4), (4, 0))]
    assert len(native) == 10 and eq(native[0], crops[0])
    assert eq(native[1], crops[1]) and eq(native[2], crops[2])
    assert eq(native[3], crops[3]) and eq(native[6], crops[1][..., ::-1])


def test_evaluate_prepares_raw_faces_itself_and_refuses_other_preprocessing(trained):
    from dataclasses import replace

    from ferlab.data import RAW, load
    from ferlab.errors import FerlabError
    from ferlab.evaluation import evaluate, select_split

    loaded = load_model(trained[0])
    prepared = select_split(loaded, trained[1], "PublicTest")
    raw = load(trained[1], preprocess=RAW)[0].split("PublicTest")
    assert not np.array_equal(raw.images, prepared.images)  # equalization changes them
    assert evaluate(loaded, raw).report == evaluate(loaded, prepared).report
    with pytest.raises(FerlabError, match="preprocessed as"):
        evaluate(loaded, replace(raw, preprocess={"equalize_hist": True, "size": 40}))
    # 3 faces of one class and 1 of another: always answering the first scores 75%.
    first, other = np.flatnonzero(raw.labels == 0)[:3], np.flatnonzero(raw.labels == 1)[:1]
    four = raw.select(np.isin(np.arange(len(raw)), np.r_[first, other]))
    assert evaluate(loaded, four).report["majority_accuracy"] == 0.75
    r = run_cli("evaluate", trained[0], "--data", trained[1], "--split", "PublicTest")
    assert r.returncode == 0 and "majority class" in r.stdout


def test_the_predictor_reads_only_logits_from_its_backend():
    """Any object with `logits(batch) -> array` computes a Predictor's probabilities: the
    batch is the prepared faces as floats in [0, 1], TTA views are averaged after softmax."""
    from ferlab.inference import Predictor
    from ferlab.models.card import ModelCard

    class Brightness:  # logit k = k x the mean brightness of the view
        name = "stub"

        def logits(self, batch):
            assert batch.dtype == np.float32 and batch.shape[1:] == (1, 48, 48)
            assert batch.min() >= 0 and batch.max() <= 1
            return batch.mean((1, 2, 3))[:, None] * np.arange(7, dtype=np.float32)

    card = ModelCard("cnn-baseline", {"num_classes": 7}, tuple(EMOTIONS))
    predictor = Predictor(None, card, Brightness())
    # Faces that record the model's preprocessing are taken as it sees them, unchanged.
    seen = replace(synthetic_faces(per_class=1, seed=2), preprocess=card.preprocess.to_dict())
    faces = seen.images
    mean = faces.reshape(len(faces), -1).mean(1) / 255
    expected = np.exp(mean[:, None] * np.arange(7))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(predictor.probabilities(seen), expected, rtol=1e-5)
    # A mirror image has the same brightness, so flip-averaging keeps the answer.
    flipped = probabilities(predictor.backend, faces, "flip")
    np.testing.assert_allclose(flipped, expected, rtol=1e-5)
    assert predictor.runtime == "stub" and predictor.probabilities(faces[:0]).shape == (0, 7)


def test_ensemble_weights_are_the_one_grid_weighting_that_classifies_every_face():
    from ferlab.errors import FerlabError
    from ferlab.evaluation import chosen_weights

    # Faces of kind X: member a is right (0.9), b wrong (0.0); kind Y: a leans wrong (0.3),
    # b right (0.85). Both kinds are right only when a's share r is in (0.556, 0.636): on the
    # grid, 3 to 2. c is always wrong, so it weighs nothing.
    right = {"a": [0.9] * 3 + [0.3] * 3, "b": [0.0] * 3 + [0.85] * 3, "c": [0.0] * 6}
    labels = np.zeros(6, int)
    probs = [np.stack([np.array(p), 1 - np.array(p)], 1) for p in right.values()]
    choice = chosen_weights(probs, labels)
    assert choice.weights == (3.0, 2.0, 0.0)
    assert choice.accuracy == 1.0 and choice.equal_accuracy == 0.0
    # Without c, the same ratio; equal weights miss the X faces.
    two = chosen_weights(probs[:2], labels)
    assert two.weights == (3.0, 2.0) and two.equal_accuracy == 0.5
    with pytest.raises(FerlabError, match="same faces"):
        chosen_weights([probs[0], probs[1][:5]], labels)


def test_many_members_are_weighed_by_a_bounded_search():
    import tracemalloc

    from ferlab.evaluation import chosen_weights
    from ferlab.evaluation.weights import LEVELS

    # 13 members (4^13 = 67M grid weightings): the same a/b case as above among 11 members
    # that are always wrong; coordinate ascent finds a weighting that classifies every face.
    right = [[0.9] * 3 + [0.3] * 3, [0.0] * 3 + [0.85] * 3] + [[0.0] * 6] * 11
    probs = [np.stack([np.array(p), 1 - np.array(p)], 1) for p in right]
    tracemalloc.start()
    choice = chosen_weights(probs, np.zeros(6, int))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert choice.accuracy == 1.0 and choice.weights[2:] == (0.0,) * 11
    assert choice.candidates <= 13 * len(LEVELS) * 10 and peak < 50e6


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1,
                     max_size=80),
        )
    )
)  # fmt: skip
def test_numpy_metrics_agree_with_torchmetrics(case):
    from torchmetrics.functional.classification import (
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    from ferlab.evaluation.metrics import classification_report, confusion_counts

    k, pairs = case
    t, p = (np.array(v) for v in zip(*pairs, strict=True))
    report = classification_report(t, p, [str(i) for i in range(k)])
    kw = {"num_classes": k, "average": "none", "zero_division": 0}
    tt, tp = torch.as_tensor(t), torch.as_tensor(p)
    for name, fn in (("precision", multiclass_precision), ("recall", multiclass_recall),
                     ("f1", multiclass_f1_score)):  # fmt: skip
        ours = [report["per_class"][str(i)][name] for i in range(k)]
        np.testing.assert_allclose(ours, fn(tp, tt, **kw).numpy(), atol=1e-6)
    np.testing.assert_array_equal(
        confusion_counts(t, p, k), multiclass_confusion_matrix(tp, tt, k).numpy()
    )
