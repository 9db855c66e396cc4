"""Model registry: `create(name)`, `list_models()`; every model shares the FERModel interface."""

from ferlab.models import compact, dnn, ensemble, resnet, vgg  # noqa: F401  (each registers its models)
from ferlab.models.base import (
    FERModel,
    InputSpec,
    ModelConfig,
    cam_layer,
    conv_layers,
    explainable_layers,
    face_batch,
    weight_layers,
)
from ferlab.models.registry import create, describe, list_models, model_config, register
from ferlab.models.summary import keras_param_counts, summary_rows

__all__ = [
    "FERModel",
    "InputSpec",
    "ModelConfig",
    "cam_layer",
    "conv_layers",
    "create",
    "describe",
    "explainable_layers",
    "face_batch",
    "keras_param_counts",
    "list_models",
    "model_config",
    "register",
    "summary_rows",
    "weight_layers",
]
