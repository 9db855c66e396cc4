"""Looking inside a model: saliency, feature maps, and filter images. Arrays in, arrays out."""

from ferlab.explain.features import FilterImages, activations, filter_images, layer_names
from ferlab.explain.saliency import (
    METHODS,
    class_average_maps,
    masked_faces,
    normalize_maps,
    saliency_maps,
)

__all__ = [
    "METHODS",
    "FilterImages",
    "activations",
    "class_average_maps",
    "filter_images",
    "layer_names",
    "masked_faces",
    "normalize_maps",
    "saliency_maps",
]
