"""Models by name, as timm does: a decorator registers a factory with its config; create()
builds by name, model_config() says what a model takes without building it."""

import fnmatch
import importlib
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ferlab.errors import FerlabError
from ferlab.models.spec import ModelConfig

if TYPE_CHECKING:
    from torch import nn

# The modules whose classes register themselves; imported (with torch) on the first lookup.
NETWORKS = ("compact", "dnn", "ensemble", "resnet", "vgg")

_FACTORIES: dict[str, Callable[..., "nn.Module"]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_DEFAULTS: dict[str, dict] = {}
# A model's config, or a function of its arguments giving it (layer names follow the widths).
_CONFIGS: dict[str, ModelConfig | Callable[..., ModelConfig]] = {}
# Names models had before; "seed" means the RNG seed everywhere else, so the study's networks
# were renamed. Old names are still accepted (the CLI says the new one) and old cards load.
RENAMED = {"vgg-seed": "vgg-study", "dnn-seed": "dnn-study"}


def canonical(name: str) -> str:
    """The registered name for `name`, old names included."""
    return RENAMED.get(name, name)


def register(
    name: str,
    description: str,
    config: ModelConfig | Callable[..., ModelConfig] = ModelConfig(),
    **defaults,
):
    """Register `factory` (a model class, or a function building one) under `name`, built
    with `defaults` unless create() is given other values: `register(...)(PlainCNN)`."""

    def wrap(factory: Callable[..., "nn.Module"]):
        if name in _FACTORIES:
            raise ValueError(f"model '{name}' registered twice")
        _FACTORIES[name] = factory
        _DEFAULTS[name] = defaults
        _DESCRIPTIONS[name] = description
        _CONFIGS[name] = config
        return factory

    return wrap


def _registered() -> None:
    for module in NETWORKS:
        importlib.import_module(f"ferlab.models.{module}")


def list_models(pattern: str = "*", standalone: bool = False) -> list[str]:
    """Registered names matching `pattern`; standalone: only the models built from their name
    alone (not `ensemble`, which needs its members)."""
    _registered()
    names = sorted(n for n in _FACTORIES if fnmatch.fnmatch(n, pattern))
    if standalone:
        names = [n for n in names if _standalone(n)]
    return names


def _standalone(name: str) -> bool:
    return model_config(name).standalone


def describe(name: str) -> str:
    _registered()
    return _DESCRIPTIONS[canonical(name)]


def _arguments(factory) -> set[str] | None:
    """The argument names `factory` (a model class) takes; None: any (it takes **kwargs)."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def model_config(name: str, **args) -> ModelConfig:
    """What model `name` built with `args` takes and where to look inside it, without building
    it; refuses arguments it does not take and an input crop it cannot use."""
    name = canonical(name)
    _registered()
    if name not in _FACTORIES:
        raise FerlabError(f"unknown model '{name}'; choose one of {', '.join(list_models())}")
    known = _arguments(_FACTORIES[name])
    unknown = sorted(set(args) - known) if known is not None else []
    if unknown:
        raise FerlabError(f"model '{name}': no argument {', '.join(map(repr, unknown))}")
    args = _DEFAULTS[name] | args
    args.pop("num_classes", None)
    crop = int(args.pop("input_crop", 0) or 0)
    config = _CONFIGS[name]
    config = config(**args) if callable(config) else config
    if crop:
        if not config.accepts_crops:
            raise FerlabError(f"model '{name}' takes whole 48x48 faces only (no input crop)")
        if not 24 <= crop < config.size:
            raise FerlabError(f"input crop must be between 24 and 47, not {crop}")
    return replace(config, crop=crop)


def create(name: str, num_classes: int = 7, input_crop: int = 0, **kwargs) -> "nn.Module":
    """Build a registered model; its arguments are kept on `model.model_args`, so that
    `create(model.model_name, **model.model_args)` builds the same network again, and its
    config on `model.config`.

    input_crop: a model trained on random crops of this side sees a 48x48 face through its
    centre crop (0: the whole face)."""
    name = canonical(name)
    config = model_config(name, num_classes=num_classes, input_crop=input_crop, **kwargs)
    try:
        args = _DEFAULTS[name] | kwargs
        model = _FACTORIES[name](num_classes=num_classes, input_crop=config.crop, **args)
    except TypeError as e:  # an argument the model does not take
        raise FerlabError(f"model '{name}': {e}") from None
    model.config = config
    model.model_name = name
    model.model_args = {"num_classes": num_classes, **kwargs}
    if config.crop:
        model.model_args["input_crop"] = config.crop
    return model
