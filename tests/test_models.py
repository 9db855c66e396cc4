import pytest
import torch

from ferlab.errors import FerlabError
from ferlab.models import (
    conv_layers,
    create,
    explainable_layers,
    keras_param_counts,
    list_models,
    model_config,
    summary_rows,
)
from ferlab.report.study import OUR_PARAMS


@pytest.mark.parametrize("name", list_models(standalone=True))
def test_every_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = create(name)
    x = torch.rand(3, 1, 48, 48, requires_grad=True)
    with torch.no_grad():  # forward == head(features), checked without dropout's randomness
        model.eval()
        torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))
    model.train()
    logits = model(x)
    assert logits.shape == (3, 7)
    logits.logsumexp(1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.model_name == name and model.model_args["num_classes"] == 7
    # Its config, read without building it, names layers the network has.
    config = model_config(name)
    assert model.config == config and config.convolutional == bool(conv_layers(model))
    layers = dict(model.named_modules())
    assert all(n is None or n in layers for n in (config.cam_layer, config.filter_layer))
    if name in OUR_PARAMS:  # the report prints these without building the network
        counts = keras_param_counts(model)
        assert (counts.total, counts.trainable, counts.non_trainable) == OUR_PARAMS[name]


@pytest.mark.parametrize(
    "name, args",
    [("cnn-baseline", {"widths": (8, 16, 32)}), ("cnn-small", {}), ("cnn-fast",
     {"stages": ((8,), (16, 16), ())}), ("resnet-fer", {"widths": (8, 16), "depths": (2, 1)})],
)  # fmt: skip
def test_a_model_config_follows_the_arguments_and_the_crop(name, args):
    config = model_config(name, input_crop=40, **args)
    model = create(name, input_crop=40, **args)
    assert config == model.config and config.crop == model.input_crop == 40
    layers = dict(model.named_modules())
    assert config.cam_layer in layers and config.filter_layer in layers
    with pytest.raises(FerlabError, match="no argument 'width'"):
        model_config(name, width=3)
    with pytest.raises(FerlabError, match="whole 48x48 faces"):
        model_config("dnn-study", input_crop=40)


def test_dnn_seed_matches_the_study_exactly():
    counts = keras_param_counts(create("dnn-study"))
    assert (counts.total, counts.trainable, counts.non_trainable) == (
        42_809_407,
        42_717_607,
        91_800,
    )


def test_vgg_seed_within_one_percent_of_the_study():
    counts = keras_param_counts(create("vgg-study"))
    assert abs(counts.total - 44_305_991) / 44_305_991 < 0.01
    assert create("vgg-study")(torch.rand(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("name", ["dnn-study", "cnn-baseline"])
def test_summary_rows_add_up_to_the_totals(name):
    model = create(name)
    rows = summary_rows(model)
    assert sum(r.params for r in rows) == keras_param_counts(model).total
    assert rows[-1].output_shape == (None, 7)


def test_conv_models_expose_conv_layers_by_name():
    convs = conv_layers(create("vgg-study"))
    assert len(convs) == 13 and next(iter(convs)) == "features.block1.conv1"
    assert "features.block1.conv2" in explainable_layers(create("vgg-study"))
    assert conv_layers(create("dnn-study")) == {}


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(FerlabError, match="unknown model 'nope'.*cnn-baseline"):
        create("nope")


@pytest.mark.parametrize("name", list_models(standalone=True))
def test_every_model_names_its_cam_layer_as_a_feature_map(name):
    from torch import nn

    from ferlab.models import cam_layer, conv_layers

    model = create(name)
    layer = cam_layer(model)
    if not conv_layers(model):
        assert layer is None and not model.accepts_crops
        return
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        model.eval()(torch.rand(2, 1, 48, 48))
    handle.remove()
    assert seen["out"].ndim == 4 and seen["out"].shape[-1] > 1  # a spatial map
    # After its activation (or a whole residual block), never a bare conv inside a branch.
    assert not isinstance(layer, nn.Conv2d | nn.BatchNorm2d)
    assert (seen["out"] >= 0).float().mean() > 0.3


def test_resnet_cam_layer_is_the_last_block_not_its_branch():
    from ferlab.models import cam_layer

    model = create("resnet-fer")
    assert model.cam_layer == "stages.stage3.1" and cam_layer(model) is model.stages.stage3[1]


def test_bad_model_arguments_are_one_clear_error():
    with pytest.raises(FerlabError, match="model 'cnn-baseline'.*width"):
        create("cnn-baseline", width=3)


def test_old_model_names_still_build_and_old_cards_still_load(tmp_path):
    from ferlab.data import EMOTIONS
    from ferlab.inference import load_model

    assert create("dnn-seed", depth=2, width=8).model_name == "dnn-study"
    model = create("cnn-baseline", widths=[8, 8, 8, 8], input_crop=44).eval()
    legacy = {  # what ferlab 0.1 wrote: the crop beside the arguments, a 0-based epoch
        "model": "cnn-baseline",
        "model_args": {"num_classes": 7, "widths": [8, 8, 8, 8]},
        "classes": list(EMOTIONS),
        "preprocess": {"equalize_hist": True, "size": 48},
        "input_crop": 44,
        "epoch": 4,
        "validation_ids": ["Training:1", "Training:2"],
    }
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "ferlab": legacy}, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.model.input_crop == 44 and loaded.card.epochs == 5
    assert loaded.card.split["ids"] == ["Training:1", "Training:2"]
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


def test_the_cli_names_the_new_model_name(tmp_path):
    from conftest import run_cli

    r = run_cli("summary", "dnn-seed")
    assert r.returncode == 0 and "now called 'dnn-study'" in r.stderr and "dnn-study" in r.stdout


def test_compact_cnn_halves_the_face_in_its_stem_and_at_each_later_stage():
    # stages as a YAML recipe gives them: lists; an empty first stage leaves the stem's output
    # to the next stage's pool
    model = create("cnn-fast", input_crop=44, stages=[[], [64, 64], [128, 128]], separable=False)
    sides = {}
    for name in ("stem", "stage2", "stage3"):
        block = model.get_submodule(f"features.{name}")
        block.register_forward_hook(lambda m, i, o, n=name: sides.update({n: o.shape[-2:]}))
    model.eval()(torch.rand(2, 1, 48, 48))
    assert sides == {"stem": (22, 22), "stage2": (11, 11), "stage3": (5, 5)}
    rebuilt = create("cnn-fast", **model.model_args)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    separable = create("cnn-fast", separable=True)
    depthwise = [m for m in conv_layers(separable).values() if m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


def test_summary_takes_a_shipped_model_as_every_command_does():
    from conftest import run_cli
    from ferlab.inference import load_model

    total = sum(p.numel() for p in load_model("default", runtime="torch").model.parameters())
    r = run_cli("summary", "default")
    assert r.returncode == 0 and f"{total:,}" in r.stdout, r.stderr


def test_the_input_spec_comes_from_the_card_and_the_network_normalizes_by_it():
    from dataclasses import replace

    from ferlab.data import RAW
    from ferlab.data.labels import EMOTIONS
    from ferlab.models.card import ModelCard

    args = {"widths": [8, 16, 16, 32], "input_crop": 40}
    card = ModelCard("cnn-baseline", args, tuple(EMOTIONS), preprocess=RAW)
    spec = card.input_spec
    assert (spec.crop, spec.size, spec.preprocess) == (40, 48, RAW)
    net = card.build().eval()
    assert net.input_crop == net.config.crop == 40  # one crop, the config's
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        before = net(x)
        net.config = replace(net.config, mean=spec.mean + 0.2)
        shifted = net(x)
        net.config = replace(net.config, mean=spec.mean)
        torch.testing.assert_close(net(x), before)
        # The border a 40-pixel centre crop leaves out is never read.
        border = x.clone()
        border[..., :4, :] = 1.0
        torch.testing.assert_close(net(border), before)
    assert not torch.allclose(shifted, before)
