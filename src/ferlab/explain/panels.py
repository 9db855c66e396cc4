"""The study's explanation figures as arrays: a trained model and faces in, what to draw out.

`ferlab explain` and the report both compute through these and draw with ferlab.plots.
Faces are given as read (uint8, 48x48); the Predictor prepares them as its model was trained.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch

from ferlab.data import FaceSet
from ferlab.data.labels import model_label_ids
from ferlab.errors import FerlabError
from ferlab.explain.features import FilterImages, activations, filter_images, layer_names
from ferlab.explain.saliency import (
    class_average_maps,
    default_method,
    masked_faces,
    normalize_maps,
    saliency_maps,
)
from ferlab.explain.trust import check_saliency
from ferlab.inference import Predictor


@dataclass
class SaliencyPanel:
    method: str
    faces: np.ndarray  # (N, 48, 48) prepared faces
    maps: np.ndarray  # (N, 48, 48) in [0, 1]
    masked: np.ndarray  # the faces with only their most salient quarter kept
    titles: list[str]
    rows: list[dict]  # per face: id, true, predicted, confidence, target


def pick_per_class(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Up to `per_class` indices of each class present, drawn with `seed`, in class order
    (faces without a label, -1, are never picked)."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == c)
        picks += sorted(rng.choice(members, min(per_class, len(members)), replace=False))
    return np.array(picks, dtype=np.int64)


def saliency_panel(
    predictor: Predictor,
    faces: np.ndarray,
    labels: np.ndarray,
    ids,
    method: str = "gradient",
    target: str = "predicted",
) -> SaliencyPanel:
    """Saliency of each face for its predicted class, its true class, or one emotion; labels
    index the model's classes (see model_labels), -1 where a face has none."""
    classes = list(predictor.classes)
    seen = predictor.seen_images(faces)
    probs = predictor.probabilities(faces)
    pred = probs.argmax(1)
    if target == "predicted":
        tgt = pred
    elif target == "true":
        if (labels < 0).any():
            raise FerlabError("--target true needs labeled faces; these have no labels")
        tgt = labels
    elif target in classes:
        tgt = np.full(len(faces), classes.index(target))
    else:
        raise FerlabError(f"--target must be predicted, true or an emotion, not '{target}'")
    x = predictor.input_batch(faces)
    maps = normalize_maps(saliency_maps(predictor.model, x, torch.as_tensor(tgt), method))
    titles = [
        f"true {classes[t] if t >= 0 else '?'} / pred {classes[p]} ({probs[i, p]:.0%})"
        for i, (t, p) in enumerate(zip(labels, pred, strict=True))
    ]
    rows = [
        {
            "id": str(ids[i]),
            "true": int(labels[i]),
            "predicted": int(pred[i]),
            "predicted_class": classes[pred[i]],
            "confidence": float(probs[i, pred[i]]),
            "target": int(tgt[i]),
        }
        for i in range(len(faces))
    ]
    return SaliencyPanel(method, seen, maps, masked_faces(seen, maps), titles, rows)


def face_saliency(
    predictor: Predictor, crops: np.ndarray, targets, method: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(the faces as the model saw them, (N, 48, 48) maps in [0, 1], the method) for face
    crops as read, each for its class index in `targets`; method None: Grad-CAM, or input
    gradients for a network without conv layers."""
    method = method or default_method(predictor.model)
    x = predictor.input_batch(crops)
    maps = normalize_maps(saliency_maps(predictor.model, x, torch.as_tensor(targets), method))
    return predictor.seen_images(crops), maps, method


def model_labels(faces: FaceSet, classes) -> np.ndarray:
    """The faces' labels as indices into the model's classes: FER+ data for a FER2013 model
    (or the other way round) through class_mapping; -1 for a face without a label or of a
    class the model lacks (FER+'s contempt for a FER2013 model)."""
    return model_label_ids(faces.labels, faces.classes, classes)


def trust_check(predictor: Predictor, faces: FaceSet | np.ndarray, n: int, cascade_faces: int):
    """(TrustReport, indices of the faces checked, seconds): every saliency method's checks
    (explain.trust.check_saliency) on a seeded draw of `n` of `faces` (as
    `Predictor.seen_images` takes them), in their order."""
    pick = np.sort(np.random.default_rng(0).permutation(len(faces))[: min(n, len(faces))])
    chosen = faces.select(pick) if isinstance(faces, FaceSet) else faces[pick]
    x = predictor.input_batch(chosen).contiguous()
    started = time.perf_counter()
    report = check_saliency(predictor.model, x, cascade_faces=cascade_faces)
    return report, pick, round(time.perf_counter() - started, 1)


def class_saliency(
    predictor: Predictor,
    faces: np.ndarray,
    labels: np.ndarray,
    method: str = "gradient",
    sample: int = 700,
    seed: int = 1,
) -> tuple[np.ndarray, int]:
    """((classes, 48, 48), n): the mean saliency map of each emotion's faces for that emotion,
    over `sample` labeled faces drawn with `seed`, and how many were drawn."""
    labeled = np.flatnonzero(labels >= 0)
    pool = np.random.default_rng(seed).choice(labeled, min(sample, len(labeled)), replace=False)
    x = predictor.input_batch(faces[pool])
    maps = class_average_maps(predictor.model, x, labels[pool], len(predictor.classes), method)
    return maps, len(pool)


def layer_activations(predictor: Predictor, face: np.ndarray, layer: str) -> np.ndarray:
    """(filters, h, w): the output of every filter of `layer` for one face as read."""
    check_layer(predictor, layer)
    x = predictor.input_batch(face[None])
    return activations(predictor.model, x, layer)[0]


def layer_filter_images(
    predictor: Predictor, layer: str, filters: list[int] | None = None, steps: int = 200
) -> FilterImages:
    """Inputs made by gradient ascent that excite each filter of `layer` (all by default)."""
    n = check_layer(predictor, layer)
    return filter_images(
        predictor.model, layer, list(range(n)) if filters is None else filters, steps=steps
    )


def check_layer(predictor: Predictor, layer: str) -> int:
    """The number of filters (or classes, for 'logits') of `layer`; a clear error if none."""
    shapes = dict(layer_names(predictor.model))
    if layer not in shapes:
        raise FerlabError(f"no layer '{layer}'; see `ferlab layers MODEL_REF`")
    return shapes[layer][0]
