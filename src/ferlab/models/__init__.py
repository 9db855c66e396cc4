"""Model registry: `create(name)`, `list_models()`; every model shares the FERModel interface.

The networks (and torch) load on first use of a name that needs them, so `ferlab.models.spec`
(what a model sees) and the model card serve the core install, which has no torch."""

from ferlab.lazy import lazy_names

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


__getattr__ = lazy_names(__name__, _FROM)


__all__ = sorted(_FROM)
