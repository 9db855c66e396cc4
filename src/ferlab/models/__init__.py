"""Model registry: `create(name)`, `list_models()`; every model shares the FERModel interface.

The networks (and torch) load on first use of a name that needs them, so `ferlab.models.spec`
(what a model sees) and the model card serve the core install, which has no torch."""

import importlib

_FROM = {
    "FERModel": "base",
    "cam_layer": "base",
    "conv_layers": "base",
    "explainable_layers": "base",
    "weight_layers": "base",
    "InputSpec": "spec",
    "ModelConfig": "spec",
    "face_batch": "spec",
    "create": "registry",
    "describe": "registry",
    "list_models": "registry",
    "model_config": "registry",
    "register": "registry",
    "keras_param_counts": "summary",
    "summary_rows": "summary",
}


def __getattr__(name: str):
    if name in _FROM:
        return getattr(importlib.import_module(f"ferlab.models.{_FROM[name]}"), name)
    raise AttributeError(f"module 'ferlab.models' has no attribute '{name}'")


__all__ = sorted(_FROM)
