"""Models by name, as timm does: a decorator registers a factory; create() builds by name."""

import fnmatch
from collections.abc import Callable

from torch import nn

from ferlab.errors import FerlabError

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}
# Names models had before; "seed" means the RNG seed everywhere else, so the study's networks
# were renamed. Old names are still accepted (the CLI says the new one) and old cards load.
RENAMED = {"vgg-seed": "vgg-study", "dnn-seed": "dnn-study"}


def canonical(name: str) -> str:
    """The registered name for `name`, old names included."""
    return RENAMED.get(name, name)


def register(name: str, description: str):
    def wrap(factory: Callable[..., nn.Module]):
        if name in _FACTORIES:
            raise ValueError(f"model '{name}' registered twice")
        _FACTORIES[name] = factory
        _DESCRIPTIONS[name] = description
        return factory

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _FACTORIES if fnmatch.fnmatch(n, pattern))


def describe(name: str) -> str:
    return _DESCRIPTIONS[canonical(name)]


def create(name: str, num_classes: int = 7, input_crop: int = 0, **kwargs) -> nn.Module:
    """Build a registered model; its arguments are kept on `model.model_args`, so that
    `create(model.model_name, **model.model_args)` builds the same network again.

    input_crop: a model trained on random crops of this side sees a 48x48 face through its
    centre crop (0: the whole face)."""
    name = canonical(name)
    if name not in _FACTORIES:
        raise FerlabError(f"unknown model '{name}'; choose one of {', '.join(list_models())}")
    try:
        model = _FACTORIES[name](num_classes=num_classes, **kwargs)
    except TypeError as e:  # an argument the model does not take
        raise FerlabError(f"model '{name}': {e}") from None
    input_crop = int(input_crop or 0)
    if input_crop:
        if not model.accepts_crops:
            raise FerlabError(f"model '{name}' takes whole 48x48 faces only (no input crop)")
        if not 24 <= input_crop < 48:
            raise FerlabError(f"input crop must be between 24 and 47, not {input_crop}")
    model.input_crop = input_crop
    model.model_name = name
    model.model_args = {"num_classes": num_classes, **kwargs}
    if input_crop:
        model.model_args["input_crop"] = input_crop
    return model
