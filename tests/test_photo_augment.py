"""The photo-crop augmentation: what a detector's crop of a photo does to a face."""

import pytest
import torch
import torch.nn.functional as F

from conftest import synthetic_faces, tiny_config, write_tree
from ferlab.errors import FerlabError
from ferlab.training import TrainConfig, train
from ferlab.training.augment import GrayJPEG, SmallFace, build_photo_augment


def faces() -> torch.Tensor:
    return torch.from_numpy(synthetic_faces(per_class=2).images).float().div(255).unsqueeze(1)


def test_small_face_is_the_face_shrunk_and_blown_up_again():
    x = faces()
    torch.manual_seed(0)
    y = SmallFace(1.0, sizes=(16, 16))(x)
    expected = F.interpolate(F.interpolate(x, size=(16, 16), mode="area"), size=(48, 48),
                             mode="bilinear", align_corners=False)  # fmt: skip
    assert torch.allclose(y, expected)
    assert torch.equal(SmallFace(0.0)(x), x)


def test_jpeg_keeps_the_face_but_not_its_exact_pixels():
    x = faces()
    y = GrayJPEG(1.0, quality=(30.0, 30.0))(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert 0 < float((y - x).abs().mean()) < 0.1


def test_no_photo_step_is_the_identity_and_every_step_changes_the_batch():
    x = faces()
    assert torch.equal(build_photo_augment()(x), x)
    for name in ("framing", "small_face", "blur", "jpeg", "photometric"):
        torch.manual_seed(0)
        y = build_photo_augment(**{name: 1.0})(x)
        assert y.shape == x.shape and not torch.allclose(y, x), name


def test_photo_settings_are_probabilities():
    with pytest.raises(FerlabError, match="--small-face is a probability"):
        TrainConfig(small_face=1.5)


def test_a_run_with_every_photo_step_trains_and_records_them(tmp_path):
    data = write_tree(synthetic_faces(per_class=10, seed=3), tmp_path / "d")
    photo = dict(framing=0.5, small_face=0.3, blur=0.3, jpeg=0.3, photometric=0.5)
    result = train(tiny_config(data, tmp_path / "run", epochs=2, **photo))
    assert result.metrics["epochs_completed"] == 2
    saved = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert {k: getattr(saved, k) for k in photo} == photo
