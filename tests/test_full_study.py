"""The study at full size: runs recorded small (no weights, no faces) and the study's figures
drawn again from the records alone."""

import json

import numpy as np
import pytest

from conftest import run_cli, synthetic_faces, tiny_config, write_tree
from ferlab.training import train

DENSE = {"depth": 3, "width": 16}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from ferlab.report.full_study import record_run

    root = tmp_path_factory.mktemp("full")
    data = write_tree(synthetic_faces(per_class=6, seed=7), root / "data")
    configs = {
        "vgg": {},
        "dnn-study-settings": {"model": "dnn-study", "model_args": DENSE},
        "dnn-learns": {"model": "dnn-study", "model_args": DENSE | {"slope": 0.5}},
    }
    evaluations = {}
    for name, kw in configs.items():
        train(tiny_config(data, root / "runs" / name, epochs=2, **kw))
        evaluations[name] = record_run(
            root / "runs" / name, data, root / "records" / name, figures=name == "vgg"
        )
    return root, data, evaluations


def test_a_record_keeps_figures_and_their_arrays_but_no_weights_and_no_faces(recorded):
    from ferlab.report.full_study import read_arrays

    root, _, evaluations = recorded
    vgg = root / "records" / "vgg"
    names = {p.name for p in vgg.iterdir()}
    assert {"config.yaml", "split.json", "metrics.csv", "eval.json", "figures.npz"} <= names
    assert {"vgg_confusion.png", "vgg_saliency_gradcam.png", "vgg_filters.png"} <= names
    assert not [p for p in vgg.rglob("*") if p.suffix in (".ckpt", ".pt")]
    arrays = read_arrays(vgg)
    assert not [k for k, a in arrays.items() if a.dtype == np.uint8]  # no face pixels
    n_val = evaluations["vgg"]["val"]["n"]
    assert arrays["val_probs"].shape == (n_val, 7) and len(arrays["saliency_hashes"]) == 7
    # Its recorded accuracy is what its recorded predictions give.
    accuracy = (arrays["val_probs"].argmax(1) == arrays["val_labels"]).mean()
    assert accuracy == pytest.approx(evaluations["vgg"]["val"]["accuracy"])
    assert arrays["filter_images"].shape[0] == len(arrays["filter_final"]) == 16
    assert evaluations["vgg"]["epochs"] == 2 and evaluations["vgg"]["cpu_hours"] >= 0
    ev = json.loads((root / "records" / "dnn-learns" / "eval.json").read_text())
    assert (
        ev == evaluations["dnn-learns"]
        and not (root / "records" / "dnn-learns" / "figures.npz").exists()
    )


def test_the_report_draws_the_study_from_records_without_training(recorded, tmp_path):
    root, data, evaluations = recorded
    out = tmp_path / "report"
    r = run_cli("report", "--full-study", root / "records", "--data", data, "--out", out)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    for name in ("vgg", "dnn-study-settings", "dnn-learns"):
        assert f"{evaluations[name]['val']['accuracy']:.1%}" in md
    for stem in ("study_curves", "vgg_confusion", "vgg_saliency_gradient", "vgg_activations",
                 "vgg_filters"):  # fmt: skip
        assert f"figures/{stem}.png" in md and (out / "figures" / f"{stem}.png").is_file()
    assert "the VGG reaches" in md and "the DNN with the study's settings" in md
    assert not (out / "runs").exists() and (out / "report.html").is_file()
    # A second report into the same folder is refused, as every --out.
    again = run_cli("report", "--full-study", root / "records", "--data", data, "--out", out)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_records_are_not_overwritten_and_other_data_is_one_line(recorded, tmp_path):
    from ferlab.errors import FerlabError
    from ferlab.report.full_study import record_run

    root, data, _ = recorded
    with pytest.raises(FerlabError, match="records are not overwritten"):
        record_run(root / "runs" / "vgg", data, root / "records" / "vgg")
    other = write_tree(synthetic_faces(per_class=6, seed=8), tmp_path / "other")
    r = run_cli("report", "--full-study", root / "records", "--data", other, "--out",
                tmp_path / "r")  # fmt: skip
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
