import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import run_cli, synthetic_faces, write_tree
from ferlab.explain import activations, filter_images, layer_names, saliency_maps
from ferlab.explain.saliency import class_average_maps, masked_faces, normalize_maps
from ferlab.models import create
from ferlab.plots import grid_figure


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(48 * 48, 7)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_gradient_saliency_equals_the_analytic_gradient():
    torch.manual_seed(0)
    model = Linear()
    x = torch.rand(3, 1, 48, 48)
    target = torch.tensor([0, 4, 6])
    maps = saliency_maps(model, x, target, "gradient")
    expected = model.fc.weight.detach()[target].abs().reshape(3, 48, 48).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-6)


class Mask(nn.Module):
    def __init__(self):
        super().__init__()
        masks = torch.zeros(2, 48, 48)
        masks[0, :24, :24] = 1  # class 0 looks only at the top-left quadrant
        masks[1, 24:, 24:] = 1  # class 1 only at the bottom-right
        self.register_buffer("masks", masks)

    def forward(self, a):
        return a * self.masks


class RegionModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.region = Mask()

    def forward(self, x):
        return self.region(self.conv(x)).sum((2, 3))


@pytest.mark.parametrize(
    "target, inside", [(0, (slice(0, 24), slice(0, 24))), (1, (slice(24, 48), slice(24, 48)))]
)
def test_gradcam_highlights_the_region_the_decision_depends_on(target, inside):
    model = RegionModel()
    x = torch.full((1, 1, 48, 48), 0.5)
    cam = saliency_maps(model, x, torch.tensor([target]), "gradcam", layer=model.region)[0]
    mask = np.zeros((48, 48), bool)
    mask[inside] = True
    assert cam[mask].min() > 0
    assert cam[~mask].max() == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("method", ["gradient", "smoothgrad", "integrated-gradients", "gradcam"])
def test_batch_and_single_image_results_agree(method):
    torch.manual_seed(0)
    model = create("cnn-baseline", widths=(8, 8, 16, 16)).eval()
    x = torch.from_numpy(synthetic_faces(per_class=1).images[:3]).float().div(255).unsqueeze(1)
    target = torch.tensor([1, 2, 3])
    torch.manual_seed(1)
    batch = saliency_maps(model, x, target, method)
    assert batch.shape == (3, 48, 48) and (batch >= 0).all()
    if method == "smoothgrad":
        return  # noise differs per call by design
    for i in range(3):
        single = saliency_maps(model, x[i : i + 1], target[i : i + 1], method)
        np.testing.assert_allclose(single[0], batch[i], rtol=1e-4, atol=1e-6)
    acts = activations(model, x, "features.block1.conv2")
    np.testing.assert_allclose(
        activations(model, x[1:2], "features.block1.conv2")[0], acts[1], rtol=1e-5, atol=1e-6
    )


def test_gradient_ascent_raises_every_filter():
    torch.manual_seed(0)
    model = create("cnn-baseline", widths=(8, 16, 16, 16)).eval()
    result = filter_images(model, "features.block2.act2", list(range(16)), steps=80)
    assert result.images.shape == (16, 48, 48)
    assert (result.images >= 0).all() and (result.images <= 1).all()
    assert (result.final > 3 * result.initial + 1e-3).all(), (result.initial, result.final)
    linear = Linear()  # a class output ("what does the model think is happy?")
    logits = filter_images(linear, "logits", [0, 3], steps=30)
    assert (logits.final > logits.initial + 1.0).all(), (logits.initial, logits.final)


def test_grid_has_one_tile_per_filter_and_layers_are_listed():
    model = create("cnn-baseline", widths=(8, 16, 16, 16))
    x = torch.rand(1, 1, 48, 48)
    maps = activations(model, x, "features.block2.conv1")[0]
    assert maps.shape == (16, 24, 24)
    fig = grid_figure(maps, [str(i) for i in range(16)], per_row=16)
    assert sum(1 for ax in fig.axes if ax.images) == 16
    fig = grid_figure(np.zeros((20, 5, 5)), per_row=16)
    assert sum(1 for ax in fig.axes if ax.images) == 20 and len(fig.axes) == 32
    names = dict(layer_names(model))
    assert names["features.block1.conv1"] == (8, 48, 48) and names["logits"] == (7,)


def test_class_average_and_masking():
    torch.manual_seed(0)
    model = create("cnn-baseline", widths=(8, 8, 16, 16)).eval()
    faces = synthetic_faces(per_class=2)
    x = torch.from_numpy(faces.images).float().div(255).unsqueeze(1)
    avg = class_average_maps(model, x, faces.labels, 7)
    assert avg.shape == (7, 48, 48) and avg.max() <= 1 + 1e-9
    maps = normalize_maps(np.random.default_rng(0).random((2, 48, 48)))
    masked = masked_faces(faces.images[:2], maps, keep=0.25)
    kept = (masked > 0).mean()
    assert 0.2 < kept < 0.3


def test_explain_cli(tmp_path):
    from ferlab.training import TrainConfig, train

    data = write_tree(synthetic_faces(per_class=10, seed=3), tmp_path / "data")
    train(
        TrainConfig(
            data=str(data),
            out=str(tmp_path / "run"),
            model="cnn-baseline",
            model_args={"widths": [8, 16, 16, 16]},
            epochs=1,
            batch_size=32,
            precision="fp32",
            quiet=True,
            augment="none",
        )
    )
    img = tmp_path / "face.png"
    Image.fromarray(synthetic_faces(per_class=1).images[3]).save(img)
    run = tmp_path / "run"
    r = run_cli(
        "explain",
        "activations",
        run,
        "--layer",
        "features.block1.conv2",
        "--image",
        img,
        "--out",
        tmp_path / "act",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "act" / "activations.png").is_file()
    r = run_cli(
        "explain",
        "saliency",
        run,
        "--data",
        data,
        "--per-class",
        "1",
        "--method",
        "gradcam",
        "--out",
        tmp_path / "sal",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sal" / "saliency.png").is_file()
    assert (tmp_path / "sal" / "class_average.png").is_file()
    r = run_cli("explain", "filters", run, "--layer", "nope", "--out", tmp_path / "f")
    assert r.returncode == 2 and "no layer 'nope'" in r.stderr and "Traceback" not in r.stderr


class DeadStart(nn.Module):
    """A conv whose ReLU is off everywhere for grey noise: no gradient reaches the input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        nn.init.constant_(self.conv.weight, 0.5)
        nn.init.constant_(self.conv.bias, -3.0)  # 9 * 0.5 * 0.5 - 3 < 0 at mid grey
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv(x)).mean((2, 3))


def test_ascent_starts_a_relu_that_is_off_everywhere():
    model = DeadStart()
    result = filter_images(model, "act", [0, 1], steps=60)
    assert (result.initial == 0).all()
    assert (result.final > 0.1).all(), result.final


def test_masked_faces_keep_a_fixed_share_even_when_the_map_is_mostly_zero():
    faces = np.full((2, 48, 48), 200, dtype=np.uint8)
    maps = np.zeros((2, 48, 48))
    maps[0, :4, :4] = 1.0  # 16 salient pixels, the rest zero
    maps[1] = np.random.default_rng(0).random((48, 48))
    kept = masked_faces(faces, maps, keep=0.25)
    k = round(0.25 * 48 * 48)
    assert ((kept > 0).reshape(2, -1).sum(1) == k).all()
    assert (kept[0, :4, :4] == 200).all()  # the salient pixels are among them
    top = maps[1].reshape(-1) >= np.sort(maps[1].reshape(-1))[-k]
    assert ((kept[1].reshape(-1) > 0) == top).all()


def test_filter_images_leave_the_models_gradients_as_they_were():
    model = create("cnn-baseline", widths=[8, 8, 8, 8])
    model.features.block1.conv1.weight.requires_grad_(False)
    before = [p.requires_grad for p in model.parameters()]
    filter_images(model, "features.block2.act2", [0, 1], steps=2)
    assert [p.requires_grad for p in model.parameters()] == before


def test_web_demo_overlays_fall_back_to_gradients_for_a_model_without_convs():
    from ferlab.data import EMOTIONS
    from ferlab.inference import Predictor
    from ferlab.models.card import ModelCard
    from ferlab.photos.analyze import analyze_gray
    from ferlab.photos.detect import create_detector
    from ferlab.serve import saliency_overlays

    model = create("dnn-study", depth=2, width=16).eval()
    loaded = Predictor(model, ModelCard("dnn-study", model.model_args, tuple(EMOTIONS)))
    face = synthetic_faces(per_class=1).images[0]
    result = analyze_gray(loaded, face, create_detector("whole"))
    ((overlay, caption),) = saliency_overlays(loaded, result)
    assert overlay.shape == (144, 144, 3) and caption.startswith("face 0: ")


def test_importing_ferlab_plots_leaves_the_matplotlib_backend_alone():
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import ferlab.plots, ferlab.report.build; "
        "print(matplotlib.get_backend())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "svg", r.stderr
