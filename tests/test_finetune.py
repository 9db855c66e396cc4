"""Fine-tuning (--init): a run that starts from a trained model's weights, on the faces that
model held out, pinned to the model's file; and the re-equalization of photo-augmented faces."""

import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from conftest import synthetic_faces, tiny_config, write_tree
from ferlab.errors import FerlabError
from ferlab.inference import load_model, validation_split_of
from ferlab.training import train
from ferlab.training.augment import equalize_batch


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """(a trained tiny run, its data folder)."""
    root = tmp_path_factory.mktemp("start")
    data = write_tree(synthetic_faces(per_class=12, seed=5), root / "data")
    train(tiny_config(data, root / "run", epochs=3, lr=1e-2))
    return root / "run", data


def test_a_fine_tuned_run_starts_from_the_models_weights_on_its_split(start, tmp_path):
    run, data = start
    model = load_model(run)
    cfg = tiny_config(data, tmp_path / "ft", epochs=1, lr=1e-9, init=str(run))
    train(cfg)
    tuned = load_model(tmp_path / "ft")
    # With a vanishing learning rate the weights are the start's: nothing was drawn afresh.
    tuned_weights = tuned.model.state_dict()
    for name, a in model.model.state_dict().items():
        if a.is_floating_point() and "running" not in name:
            assert torch.allclose(a, tuned_weights[name], atol=1e-6), name
    assert validation_split_of(tuned).hashes == validation_split_of(model).hashes
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    saved = (tmp_path / "ft" / "config.yaml").read_text()
    assert f"init_sha256: {digest}" in saved


def test_a_fresh_run_differs_from_the_start(start, tmp_path):
    run, data = start
    train(tiny_config(data, tmp_path / "fresh", epochs=1, lr=1e-9, seed=7))
    a = load_model(run).model.state_dict()
    b = load_model(tmp_path / "fresh").model.state_dict()
    assert any(not torch.allclose(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_init_refuses_another_file_than_the_pinned_one(start, tmp_path):
    run, data = start
    cfg = tiny_config(data, tmp_path / "ft", epochs=1, init=str(run), init_sha256="0" * 64)
    with pytest.raises(FerlabError, match="not the model this recipe starts from"):
        train(cfg)
    assert not (tmp_path / "ft").exists()


def test_init_refuses_another_network_and_a_split_it_trained_on(start, tmp_path):
    run, data = start
    wider = tiny_config(data, tmp_path / "w", epochs=1, init=str(run))
    wider = replace(wider, model_args={"widths": [8, 16, 16, 64], "dropout": 0.0})
    with pytest.raises(FerlabError, match="give the same --model"):
        train(wider)
    other = tmp_path / "other"
    train(tiny_config(data, other, epochs=1, split_seed=3))  # another draw of validation faces
    cfg = tiny_config(data, tmp_path / "s", epochs=1, init=str(run))
    with pytest.raises(FerlabError, match="trained on .* of this run's validation faces"):
        train(replace(cfg, split_file=str(other / "split.json")))


def test_batch_equalization_is_cv2s_within_one_gray_level():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 48, 48, generator=g) ** 2
    x[5] = 0.4  # one gray level: left as it is
    y = equalize_batch(x)
    for i in range(len(x)):
        face = (x[i, 0] * 255).round().numpy().astype(np.uint8)
        ours = (y[i, 0] * 255).round().numpy()
        assert np.abs(ours - cv2.equalizeHist(face)).max() <= 1, i
    assert torch.allclose(y[5], x[5], atol=1 / 255)


def test_photo_augmented_training_faces_are_equalized_again():
    from dataclasses import asdict

    from ferlab.models.card import ModelCard
    from ferlab.training.module import FERModule

    def inputs(**photo):
        cfg = tiny_config("d", "o", **photo)
        args = cfg.model_kwargs(7)
        card = ModelCard(model="cnn-baseline", model_args=args, classes=tuple("abcdefg"))
        module = FERModule(asdict(cfg), card.to_dict())
        module.train()
        torch.manual_seed(0)
        images = torch.from_numpy(synthetic_faces(per_class=2).images)
        return module._inputs(images).flatten(1)

    lit = inputs(photometric=1.0)  # gamma, contrast and side light, then equalized
    assert torch.allclose(lit.min(1).values, torch.zeros(len(lit)))
    assert torch.allclose(lit.max(1).values, torch.ones(len(lit)))
    plain = inputs()
    assert not torch.allclose(plain.min(1).values, torch.zeros(len(plain)))
