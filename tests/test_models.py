import pytest
import torch

from ferlab.errors import FerlabError
from ferlab.models import (
    conv_layers,
    create,
    explainable_layers,
    keras_param_counts,
    list_models,
    summary_rows,
)


@pytest.mark.parametrize("name", list_models())
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


def test_dnn_seed_matches_the_study_exactly():
    counts = keras_param_counts(create("dnn-seed"))
    assert (counts.total, counts.trainable, counts.non_trainable) == (
        42_809_407,
        42_717_607,
        91_800,
    )


def test_vgg_seed_within_one_percent_of_the_study():
    counts = keras_param_counts(create("vgg-seed"))
    assert abs(counts.total - 44_305_991) / 44_305_991 < 0.01
    assert create("vgg-seed")(torch.rand(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("name", ["dnn-seed", "cnn-baseline"])
def test_summary_rows_add_up_to_the_totals(name):
    model = create(name)
    rows = summary_rows(model)
    assert sum(r.params for r in rows) == keras_param_counts(model).total
    assert rows[-1].output_shape == (None, 7)


def test_conv_models_expose_conv_layers_by_name():
    convs = conv_layers(create("vgg-seed"))
    assert len(convs) == 13 and next(iter(convs)) == "features.block1.conv1"
    assert "features.block1.conv2" in explainable_layers(create("vgg-seed"))
    assert conv_layers(create("dnn-seed")) == {}


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(FerlabError, match="unknown model 'nope'.*cnn-baseline"):
        create("nope")
