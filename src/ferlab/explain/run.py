"""The explain commands: load a model and faces, compute with ferlab.explain, plot."""

import json
import time
from pathlib import Path

import numpy as np
import torch

from ferlab.checkpoint import face_batch, load_model, predict_proba
from ferlab.data import EMOTIONS, RAW, load
from ferlab.data.images import decode_gray
from ferlab.data.preprocess import to_face_size
from ferlab.errors import FerlabError
from ferlab.explain.features import activations, filter_images, layer_names
from ferlab.explain.saliency import (
    class_average_maps,
    masked_faces,
    normalize_maps,
    saliency_maps,
)
from ferlab.io import write_text_atomic
from ferlab.plots import plot_class_maps, plot_grid, plot_saliency_panels


def _default_split(names: list[str], split: str | None) -> str:
    if split:
        return split
    if "PublicTest" in names:
        return "PublicTest"
    if len(names) == 1:
        return names[0]
    raise FerlabError(f"data holds splits {', '.join(names)}; choose one with --split")


def _pick(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(len(EMOTIONS)):
        members = np.flatnonzero(labels == c)
        picks += sorted(rng.choice(members, min(per_class, len(members)), replace=False))
    return np.array(picks, dtype=np.int64)


def saliency_report(model_ref, data, split, per_class, ids, method, target, sample, out: Path):
    loaded = load_model(model_ref)
    raw, _ = load(data, preprocess=RAW)
    faces = raw.split(_default_split(raw.split_names, split))
    faces_pre = loaded.preprocess.apply(faces.images)
    if ids:
        faces.select_ids(ids)  # a clear error for an unknown id
        position = {k: i for i, k in enumerate(faces.ids.tolist())}
        index = np.array([position[i] for i in ids], dtype=np.int64)
    else:
        index = _pick(faces.labels, per_class)
    x = face_batch(faces_pre[index])
    probs = predict_proba(loaded.model, faces_pre[index])
    pred = probs.argmax(1)
    true = faces.labels[index]
    if target == "predicted":
        tgt = pred
    elif target == "true":
        if (true < 0).any():
            raise FerlabError("--target true needs labeled faces; these have no labels")
        tgt = true
    elif target in EMOTIONS:
        tgt = np.full(len(index), EMOTIONS.index(target))
    else:
        raise FerlabError(f"--target must be predicted, true or an emotion, not '{target}'")
    maps = normalize_maps(saliency_maps(loaded.model, x, torch.as_tensor(tgt), method))
    titles = [
        f"true {EMOTIONS[t] if t >= 0 else '?'} / pred {EMOTIONS[p]} ({probs[i, p]:.0%})"
        for i, (t, p) in enumerate(zip(true, pred, strict=True))
    ]
    files = [
        plot_saliency_panels(
            faces_pre[index],
            maps,
            masked_faces(faces_pre[index], maps),
            titles,
            out / "saliency.png",
            method,
        )
    ]
    labeled = np.flatnonzero(faces.labels >= 0)
    if len(labeled):
        rng = np.random.default_rng(1)
        pool = rng.choice(labeled, min(sample, len(labeled)), replace=False)
        avg = class_average_maps(
            loaded.model, face_batch(faces_pre[pool]), faces.labels[pool], len(EMOTIONS), method
        )
        files.append(
            plot_class_maps(
                avg,
                list(EMOTIONS),
                out / "class_average.png",
                f"mean {method} saliency for the true class ({len(pool)} faces)",
            )
        )
    info = [
        {
            "id": str(faces.ids[k]),
            "true": int(true[i]),
            "predicted": int(pred[i]),
            "confidence": float(probs[i, pred[i]]),
            "target": int(tgt[i]),
        }
        for i, k in enumerate(index)
    ]
    write_text_atomic(
        out / "saliency.json", json.dumps({"method": method, "faces": info}, indent=1) + "\n"
    )
    return files + [out / "saliency.json"]


def load_face(image: str, data: Path | None, loaded) -> tuple[np.ndarray, str]:
    """One preprocessed (48, 48) face from an image file or an id in `data`."""
    path = Path(image)
    if path.is_file():
        face = to_face_size(decode_gray(path.read_bytes(), str(path)))
    elif data is not None:
        raw, _ = load(data, preprocess=RAW)
        face = raw.select_ids([image]).images[0]
    else:
        raise FerlabError(f"{image}: no such image file (give --data to pick a face by id)")
    return loaded.preprocess.apply(face[None])[0], path.name if path.is_file() else image


def activations_report(model_ref, layer, image, data, out: Path) -> Path:
    loaded = load_model(model_ref)
    face, name = load_face(image, data, loaded)
    maps = activations(loaded.model, face_batch(face[None]), layer)[0]  # (C, h, w)
    tiles = [face / 255.0, *maps]  # the input keeps its size; deep maps are smaller
    captions = ["input"] + [f"#{i} {m.mean():.2f}" for i, m in enumerate(maps)]
    return plot_grid(
        tiles,
        out / "activations.png",
        captions,
        per_row=16,
        title=f"{layer}: {len(maps)} filters for {name} (caption: filter, mean)",
        cmap="viridis",
    )


def parse_filters(spec: str | None, n: int) -> list[int]:
    """'0-15,20' -> [0..15, 20]; None or 'all' -> every filter."""
    if not spec or spec == "all":
        return list(range(n))
    chosen = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
            raise FerlabError(f"--filters: '{part}' is not a number or a range like 0-15")
        chosen += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return chosen


def filters_report(model_ref, layer, filters_spec, steps, out: Path) -> tuple[Path, float]:
    loaded = load_model(model_ref)
    shapes = dict(layer_names(loaded.model))
    if layer not in shapes:
        raise FerlabError(f"no layer '{layer}'; see `ferlab layers {model_ref}`")
    chosen = parse_filters(filters_spec, shapes[layer][0])
    start = time.perf_counter()
    result = filter_images(loaded.model, layer, chosen, steps=steps)
    seconds = time.perf_counter() - start
    names = EMOTIONS if layer == "logits" else None
    captions = [
        f"{names[f] if names else f'#{f}'} {a:.2f}"
        for f, a in zip(result.filters, result.final, strict=True)
    ]
    path = plot_grid(
        result.images,
        out / "filters.png",
        captions,
        per_row=16,
        title=f"{layer}: inputs maximizing each {'class' if names else 'filter'} "
        f"({steps} steps; caption: final mean activation)",
    )
    write_text_atomic(
        out / "filters.json",
        json.dumps(
            {
                "layer": layer,
                "steps": steps,
                "seconds": round(seconds, 2),
                "filters": result.filters,
                "initial": result.initial.round(4).tolist(),
                "final": result.final.round(4).tolist(),
            },
            indent=1,
        )
        + "\n",
    )
    return path, seconds
