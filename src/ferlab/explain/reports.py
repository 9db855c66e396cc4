"""The explain commands' work as library calls: load a model and faces, compute with
ferlab.explain.panels, draw with ferlab.plots, write the figures and their numbers into a
folder (`ferlab explain saliency|check|activations|filters` call these). Everything they use
is imported with this module, before a command opens its output folder: a stop signal then
never lands inside an import."""

import json
import time
from pathlib import Path

import numpy as np

from ferlab.atomic import write_text_atomic
from ferlab.data import RAW, load, only_face_crops
from ferlab.data.images import decode_gray
from ferlab.errors import FerlabError
from ferlab.evaluation import select_split
from ferlab.explain import panels
from ferlab.inference import load_model
from ferlab.plots import (
    plot_activations,
    plot_class_saliency,
    plot_filter_images,
    plot_saliency_panels,
    plot_trust,
)


def _default_split(names: list[str], split: str | None) -> str:
    if split:
        return split
    if "PublicTest" in names:
        return "PublicTest"
    if len(names) == 1:
        return names[0]
    raise FerlabError(f"data holds splits {', '.join(names)}; choose one with --split")


def saliency_report(model_ref, data, split, per_class, ids, method, target, sample, out: Path):
    predictor = load_model(model_ref, runtime="torch")
    hint = "explain a photo's faces with ferlab.Recognizer.explain or the web demo"
    raw = only_face_crops(load(data, preprocess=RAW)[0], hint)
    faces = raw.split(_default_split(raw.split_names, split))
    if ids:
        faces.select_ids(ids)  # a clear error for an unknown id
        position = {k: i for i, k in enumerate(faces.ids.tolist())}
        index = np.array([position[i] for i in ids], dtype=np.int64)
    labels = panels.model_labels(faces, predictor.classes)
    if not ids:
        index = panels.pick_per_class(labels, per_class)
    panel = panels.saliency_panel(
        predictor, faces.images[index], labels[index], faces.ids[index], method, target
    )
    files = [
        plot_saliency_panels(
            panel.faces, panel.maps, panel.masked, panel.titles, out / "saliency.png", method
        )
    ]
    if (labels >= 0).any():
        averages, n = panels.class_saliency(predictor, faces.images, labels, method, sample)
        names = list(predictor.classes)
        files.append(plot_class_saliency(averages, names, method, n, out / "class_average.png"))
    write_text_atomic(
        out / "saliency.json", json.dumps({"method": method, "faces": panel.rows}, indent=1) + "\n"
    )
    return files + [out / "saliency.json"]


def load_face(image: str, data: Path | None) -> tuple[np.ndarray, str]:
    """One (48, 48) face as read, from a face crop's image file or an id in `data`, and its
    name. A photo is refused rather than squashed into a face."""
    path = Path(image)
    if path.is_file():
        gray = decode_gray(path.read_bytes(), str(path))
        if gray.shape != (48, 48):
            raise FerlabError(
                f"{path}: {gray.shape[1]}x{gray.shape[0]}, not a 48x48 face crop; for a "
                "photo's faces use `ferlab explain saliency MODEL --image PHOTO`"
            )
        return gray, path.name
    if data is not None:
        raw, _ = load(data, preprocess=RAW)
        return raw.select_ids([image]).images[0], image
    raise FerlabError(f"{image}: no such image file (give --data to pick a face by id)")


def activations_report(model_ref, layer, image, data, out: Path) -> Path:
    predictor = load_model(model_ref, runtime="torch")
    face, name = load_face(image, data)
    maps = panels.layer_activations(predictor, face, layer)  # (C, h, w)
    seen = predictor.seen_images(face[None])[0]
    return plot_activations(seen, maps, layer, name, out / "activations.png")


def parse_filters(spec: str | None, n: int) -> list[int]:
    """'0-15,20' -> [0..15, 20]; None or 'all' -> every filter."""
    if not spec or spec == "all":
        return list(range(n))
    chosen = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
            raise FerlabError(f"--filters: '{part}' is not a number or a range like 0-15")
        first, last = int(lo), int(hi) if hi else int(lo)
        if last < first:
            raise FerlabError(f"--filters: '{part}' runs backwards (write {last}-{first})")
        if last >= n:  # checked before a list of them is made: 0-99999999 would take GBs
            raise FerlabError(f"--filters: the layer has filters 0-{n - 1}, not {last}")
        chosen += range(first, last + 1)
    return sorted(set(chosen))


def filters_report(model_ref, layer, filters_spec, steps, out: Path) -> tuple[Path, float]:
    predictor = load_model(model_ref, runtime="torch")
    chosen = parse_filters(filters_spec, panels.check_layer(predictor, layer))
    start = time.perf_counter()
    result = panels.layer_filter_images(predictor, layer, chosen, steps=steps)
    seconds = time.perf_counter() - start
    names = list(predictor.classes) if layer == "logits" else None
    path = plot_filter_images(
        result.images, result.filters, result.final, layer, steps, out / "filters.png", names
    )
    record = {
        "layer": layer,
        "steps": steps,
        "seconds": round(seconds, 2),
        "filters": result.filters,
        "initial": result.initial.round(4).tolist(),
        "final": result.final.round(4).tolist(),
    }
    write_text_atomic(out / "filters.json", json.dumps(record, indent=1) + "\n")
    return path, seconds


def trust_report(model_ref, data, split, n: int, cascade_faces: int, out: Path | None) -> dict:
    """`ferlab explain check`: every saliency method's sanity checks and faithfulness scores
    on `n` faces of `split` (seeded draw), as the dict --json prints; with `out`, also
    trust.json and the two figures."""
    if n < 1 or cascade_faces < 1:
        raise FerlabError("--n and --cascade-faces must be at least 1")
    predictor = load_model(model_ref, runtime="torch")
    faces = select_split(predictor, data, split or "val")
    report, pick, seconds = panels.trust_check(predictor, faces, n, cascade_faces)
    result = report.to_dict() | {
        "model": str(model_ref),
        "split": split or "val",
        "face_ids": faces.ids[pick][: report.cascade_faces].tolist(),
        "seconds": seconds,
    }
    if out is not None:
        write_text_atomic(out / "trust.json", json.dumps(result, indent=1) + "\n")
        plot_trust(result, report.cascades(), out)
    return result


def trust_rows(result: dict) -> tuple[list[str], list[tuple[str, ...]]]:
    """(columns, rows) of the table `ferlab explain check` prints from `trust_report`."""
    columns = ["method", "randomized (Spearman)", "passes", "deletion AUC", "insertion AUC",
               "shift", "flip"]  # fmt: skip
    rows = [
        (name, f"{m['spearman'][-1]:.2f}", "yes" if m["passes_randomization"] else "no",
         f"{m['deletion_auc']:.3f}", f"{m['insertion_auc']:.3f}", f"{m['shift_spearman']:.2f}",
         f"{m['flip_spearman']:.2f}")
        for name, m in result["methods"].items()
    ] + [  # orders, not maps of the model: no cascade
        (f"{name} (baseline)", "", "", f"{m['deletion_auc']:.3f}", f"{m['insertion_auc']:.3f}",
         "", "")
        for name, m in result["baselines"].items()
    ]  # fmt: skip
    return columns, rows
