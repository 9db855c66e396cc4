"""Can saliency maps be trusted: the checks themselves, on models whose answer is known."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import run_cli, tiny_run
from ferlab.explain.trust import (
    STEPS,
    auc,
    blurred,
    check_saliency,
    deletion_insertion,
    spearman,
)


def test_spearman_is_the_rank_correlation_with_tied_ranks_averaged():
    a = np.array([[1.0, 2.0, 2.0, 4.0], [0.0, 1.0, 2.0, 3.0]])
    b = np.array([[10.0, 20.0, 20.0, 40.0], [3.0, 2.0, 1.0, 0.0]])
    np.testing.assert_allclose(spearman(a, b), [1.0, -1.0])
    # ranks of [1, 2, 2, 4] are [0, 1.5, 1.5, 3]; of [4, 3, 2, 1] reversed: Pearson of those
    c = np.array([[4.0, 3.0, 2.0, 1.0]])
    ra, rc = np.array([0, 1.5, 1.5, 3]), np.array([3, 2, 1, 0.0])
    np.testing.assert_allclose(spearman(a[:1], c), [np.corrcoef(ra, rc)[0, 1]])


class PatchModel(nn.Module):
    """Class 0 when the pixels of an 8x8 patch are bright, else class 1: the patch is all the
    evidence, so a faithful map ranks its pixels first."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(48 * 48, 2)
        w = torch.zeros(2, 48, 48)
        w[0, 10:18, 10:18] = 0.5
        with torch.no_grad():
            self.linear.weight.copy_(w.reshape(2, -1))
            self.linear.bias.copy_(torch.tensor([0.0, 24.0]))

    def forward(self, x):
        return self.linear(x.flatten(1))


def patch_faces(n=6):
    faces = torch.zeros(n, 1, 48, 48)
    faces[:, :, 10:18, 10:18] = 1.0
    return faces + 0.05 * torch.rand(n, 1, 48, 48, generator=torch.Generator().manual_seed(0))


def test_deleting_the_evidence_first_beats_a_random_order():
    model, faces = PatchModel(), patch_faces()
    report = check_saliency(model, faces, methods=("gradient",))
    gradient, random = report.methods["gradient"], report.random_order
    assert gradient.deletion_auc < 0.5 * random["deletion_auc"]
    assert gradient.insertion_auc > random["insertion_auc"] + 0.2
    # Both curves start on the untouched face and end on its blurred copy (or the reverse).
    plain = faces[:, 0].numpy()
    with torch.no_grad():
        p0 = torch.softmax(model(faces), 1)[:, 0].mean().item()
        soft = torch.from_numpy(blurred(plain))[:, None].float()
        p_blur = torch.softmax(model(soft), 1)[:, 0].mean().item()
    assert gradient.deletion_curve[0] == pytest.approx(p0, abs=1e-4)
    assert gradient.deletion_curve[-1] == pytest.approx(p_blur, abs=1e-4)
    assert gradient.insertion_curve[0] == pytest.approx(p_blur, abs=1e-4)
    assert len(gradient.deletion_curve) == STEPS + 1


def test_randomizing_the_only_layer_changes_the_gradient_map_and_not_the_model():
    model, faces = PatchModel(), patch_faces()
    before = model.linear.weight.detach().clone()
    gradient = check_saliency(model, faces, methods=("gradient",)).methods["gradient"]
    assert gradient.layers == ["linear"]
    assert gradient.spearman[-1] < 0.5 and gradient.passes_randomization
    assert torch.equal(model.linear.weight, before)  # checked on a copy


def test_area_under_a_curve():
    assert auc(np.ones(STEPS + 1)) == pytest.approx(1.0)
    assert auc(np.linspace(1, 0, STEPS + 1)) == pytest.approx(0.5)


def test_deletion_with_a_constant_order_is_the_same_for_every_map_at_the_ends(tmp_path):
    faces = patch_faces(3)[:, 0].numpy()
    target = torch.zeros(3, dtype=torch.long)
    a, _ = deletion_insertion(PatchModel(), faces, np.random.rand(3, 48, 48), target)
    b, _ = deletion_insertion(PatchModel(), faces, np.zeros((3, 48, 48)), target)
    np.testing.assert_allclose(a[[0, -1]], b[[0, -1]], atol=1e-6)


def test_explain_check_command_writes_scores_and_figures(tmp_path):
    run, data = tiny_run(tmp_path, per_class=6, seed=4, epochs=2)
    out = tmp_path / "trust"
    r = run_cli("explain", "check", run, "--data", data, "--n", "5", "--cascade-faces", "3",
                "--out", out, "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert set(result["methods"]) == {"gradient", "smoothgrad", "integrated-gradients", "gradcam"}
    depth = len(result["methods"]["gradient"]["layers"])
    assert depth >= 2 and all(len(m["spearman"]) == depth for m in result["methods"].values())
    assert result["n"] == 5 and result["cascade_faces"] == 3 and len(result["face_ids"]) == 3
    assert result["best"] in result["methods"]
    saved = json.loads((out / "trust.json").read_text())
    assert saved["methods"].keys() == result["methods"].keys()
    assert (out / "trust_curves.png").stat().st_size > 10_000
    assert (out / "trust_cascade.png").stat().st_size > 10_000
    r = run_cli("explain", "check", run, "--data", data, "--n", "0")
    assert r.returncode == 2 and "must be at least 1" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_methods_sentence_follows_its_numbers():
    from ferlab.explain.trust import verdict

    random = {"deletion_auc": 0.35, "insertion_auc": 0.35}
    edge = {"deletion_auc": 0.30, "insertion_auc": 0.50}
    m = {"spearman": [0.9, 0.3], "passes_randomization": True, "deletion_auc": 0.2,
         "insertion_auc": 0.6, "shift_spearman": 0.9, "flip_spearman": 0.8}  # fmt: skip
    good = verdict("gradcam", m, random, edge)
    assert "changes when the model does" in good and "0.30" in good
    assert "better than a random order and the edge map" in good and "+0.400" in good
    assert "it is steady" in good
    m |= {"spearman": [0.9, 0.8], "passes_randomization": False, "insertion_auc": 0.35,
          "flip_spearman": 0.2}  # fmt: skip
    bad = verdict("smoothgrad", m, random, edge)
    assert "shows the face more than the model" in bad and "0.80" in bad
    assert "better than the random baseline only" in bad and "unsteady" in bad


def test_maps_are_compared_on_the_pixels_the_model_reads():
    from ferlab.explain.trust import seen_pixels

    class Cropping(nn.Module):
        input_crop = 44

    seen = seen_pixels(Cropping(), 48, 48)
    assert seen.sum() == 44 * 44 and not seen[:2].any() and seen[2:46, 2:46].all()
    assert seen_pixels(nn.Linear(1, 1), 48, 48).all()  # no crop: every pixel
    # Two unrelated maps that share only the zero border a crop leaves: counted whole, the
    # border alone makes them correlate (about 0.34); on the pixels read, they do not.
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 40, 48, 48))
    a[:, ~seen], b[:, ~seen] = 0, 0
    whole = spearman(a.reshape(40, -1), b.reshape(40, -1)).mean()
    read = spearman(a[:, seen], b[:, seen]).mean()
    assert 0.25 < whole < 0.45 and abs(read) < 0.05


def test_explain_check_on_a_dense_network_says_gradcam_is_not_applicable_at_once(tmp_path):
    import json

    from conftest import run_cli, synthetic_faces, tiny_config, write_tree
    from ferlab.training import train

    data = write_tree(synthetic_faces(per_class=6, seed=4), tmp_path / "d")
    run = tmp_path / "run"
    cfg = tiny_config(data, run, epochs=1, model="dnn-study",
                      model_args={"depth": 3, "width": 16})  # fmt: skip
    train(cfg)
    r = run_cli("explain", "check", run, "--data", data, "--n", "8", "--cascade-faces", "2",
                "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert "gradcam" not in result["methods"] and "gradcam" in result["not_applicable"]
    assert set(result["methods"]) == {"gradient", "smoothgrad", "integrated-gradients"}


def test_an_ensemble_is_checked_on_the_pixels_its_members_read():
    from ferlab.explain.trust import seen_pixels
    from ferlab.models import create

    def members(*crops):
        return [{"model": "cnn-small", "model_args": {"input_crop": c}} for c in crops]

    cropped = create("ensemble", members=members(44, 40))
    assert cropped.input_crop == 0  # it takes whole faces; its members crop them
    seen = seen_pixels(cropped, 48, 48)
    assert seen.sum() == 44 * 44 and not seen[:2].any()  # the larger member crop, not 48x48
    assert seen_pixels(create("ensemble", members=members(44, 0)), 48, 48).all()
