"""Models by name, as timm does: a decorator registers a factory; create() builds by name."""

import fnmatch
from collections.abc import Callable

from torch import nn

from ferlab.errors import FerlabError

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}


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
    return _DESCRIPTIONS[name]


def create(name: str, num_classes: int = 7, **kwargs) -> nn.Module:
    """Build a registered model; its constructor arguments are kept on `model.model_args`."""
    if name not in _FACTORIES:
        raise FerlabError(f"unknown model '{name}'; choose one of {', '.join(list_models())}")
    try:
        model = _FACTORIES[name](num_classes=num_classes, **kwargs)
    except TypeError as e:  # an argument the model does not take
        raise FerlabError(f"model '{name}': {e}") from None
    model.model_name = name
    model.model_args = {"num_classes": num_classes, **kwargs}
    return model
