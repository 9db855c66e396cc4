"""Looking inside a model: saliency, feature maps, and filter images. Arrays in, arrays out.

The names below load their module (and torch) when first used, so that `ferlab.explain.methods`
and the command line can be imported without the training stack."""

import importlib

from ferlab.explain.methods import METHODS

_WHERE = {
    "FilterImages": "features",
    "activations": "features",
    "filter_images": "features",
    "layer_names": "features",
    "class_average_maps": "saliency",
    "masked_faces": "saliency",
    "normalize_maps": "saliency",
    "saliency_maps": "saliency",
}

__all__ = ["METHODS", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"ferlab.explain.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ferlab.explain' has no attribute '{name}'")
