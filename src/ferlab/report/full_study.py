"""The study at full size: its own networks trained long on this data, recorded small enough
to keep, and the study's figures drawn again from those records without training.

`record_run` turns a finished run into a record folder: its small files (config, split,
history, curves, env), its validation and PublicTest accuracy (plain and TTA) and, for the CNN,
the arrays the study's figures need (predictions, saliency and Grad-CAM maps of one validation
face per emotion, the second conv layer's outputs for one face, gradient-ascent images of its
filters), drawn as PNGs too. The VGG's weights (177 MB) are not kept: these arrays are what the
report needs from them. `build_full_study` renders the section from three such records.

Faces are never stored: a record names them by id, and the report reads them from the data.
"""

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlab.atomic import staged_folder, write_text_atomic
from ferlab.data import RAW, Preprocess, load
from ferlab.errors import FerlabError
from ferlab.evaluation.metrics import confusion_counts, most_confused, normalize_rows
from ferlab.report.study import STUDY_FILTER_LAYER, confused_beside_study

# The record folders, in the order the study compares them.
RUNS = {
    "vgg": "the study's VGG (vgg-study)",
    "dnn-study-settings": "the study's DNN, its settings (slope 0.1, dropout 0.2)",
    "dnn-learns": "the study's DNN, slope 0.5 and no dropout",
}
SMALL_FILES = ("config.yaml", "split.json", "metrics.csv", "metrics.json", "env.json",
               "curves.png", "gradient_norms.csv")  # fmt: skip
FIGURES = "figures.npz"
METHODS = ("gradient", "gradcam")  # the study's saliency, and Grad-CAM beside it
FILTER_STEPS = 200  # as the study ran gradient ascent
# Where a 48x48 face has its eyes and its mouth (rows), for the saliency sentence.
EYES, MOUTH = slice(12, 24), slice(30, 42)


@dataclass(frozen=True)
class Recorded:
    """One record folder, read back."""

    path: Path
    config: dict
    metrics: dict
    evaluation: dict
    history: dict


def record_run(run: Path, data: str | Path, dest: Path, figures: bool = False) -> dict:
    """Record the finished run at `run` into `dest` (written whole, or not at all): its
    small files and eval.json; with `figures`, the study's figure arrays (figures.npz) and
    their PNGs. Returns eval.json's contents."""
    from ferlab.evaluation import evaluate
    from ferlab.inference import load_model, validation_split_of
    from ferlab.runs import RunFolder

    folder = RunFolder(Path(run))
    if not folder.finished():
        raise FerlabError(f"{run}: not a finished ferlab run (no metrics.json)")
    if Path(dest).exists():
        raise FerlabError(f"{dest}: exists; records are not overwritten (remove it first)")
    predictor = load_model(folder.path, runtime="torch")
    seconds = [s for s in folder.read_history()["epoch_seconds"] if s == s]
    evaluation = {
        "model": predictor.card.model,
        "recipe": predictor.card.recipe,
        "epochs": len(seconds),
        "best_epoch": predictor.card.epochs,
        "cpu_hours": round(sum(seconds) / 3600, 2),
        "preprocess": predictor.preprocess.to_dict(),
    }
    raw, _ = load(data, preprocess=RAW)  # as read: evaluate and the panels prepare them
    read = {
        "val": validation_split_of(predictor).apply(raw)[1].only_labelled(),
        "PublicTest": raw.split("PublicTest").only_labelled(),
    }
    faces = {}
    for split, part in read.items():
        plain = evaluate(predictor, part, split=split)
        tta = evaluate(predictor, part, tta=True, split=split).report
        evaluation[split] = {
            "n": plain.report["n"],
            "accuracy": plain.report["accuracy"],
            "accuracy_tta": tta["accuracy"],
            "macro_f1": plain.report["macro_f1"],
            "majority_accuracy": plain.report["majority_accuracy"],
        }
        faces[split] = (part, plain.probs)
    with staged_folder(Path(dest)) as staging:
        for name in SMALL_FILES:
            if (folder.path / name).is_file():
                shutil.copy(folder.path / name, staging / name)
        if figures:
            arrays = figure_arrays(predictor, faces)
            np.savez_compressed(staging / FIGURES, **arrays)
            draw_figures(arrays, faces["val"][0], staging, evaluation["preprocess"])
        write_text_atomic(staging / "eval.json", json.dumps(evaluation, indent=1) + "\n")
    return evaluation


def figure_arrays(predictor, faces: dict) -> dict[str, np.ndarray]:
    """What the study's figures 3 to 5 need from a trained CNN, as arrays: predictions with
    labels; saliency maps of one validation face per emotion; the filter layer's outputs for
    one face; gradient-ascent images of its filters."""
    from ferlab.explain.panels import (
        layer_activations,
        layer_filter_images,
        model_labels,
        pick_per_class,
        saliency_panel,
    )

    val, val_probs = faces["val"]
    public, public_probs = faces["PublicTest"]
    labels = model_labels(val, predictor.classes)
    index = pick_per_class(labels, 1)
    arrays = {
        "classes": np.array(predictor.classes),
        "val_probs": val_probs.astype(np.float32),
        "val_labels": labels.astype(np.int8),
        "public_probs": public_probs.astype(np.float32),
        "public_labels": model_labels(public, predictor.classes).astype(np.int8),
        "saliency_ids": val.ids[index],
        "saliency_hashes": val.hashes[index],
        "saliency_labels": labels[index].astype(np.int8),
    }
    for method in METHODS:
        panel = saliency_panel(predictor, val.images[index], labels[index], val.ids[index], method)
        arrays[f"saliency_{method}"] = panel.maps.astype(np.float16)
    arrays["saliency_predicted"] = np.array([r["predicted"] for r in panel.rows], np.int8)
    layer = predictor.model.config.filter_layer
    arrays["layer"] = np.array(layer)
    arrays["activation_id"] = val.ids[index[0]]
    arrays["activation_hash"] = val.hashes[index[0]]
    arrays["activations"] = layer_activations(predictor, val.images[index[0]], layer).astype(
        np.float16
    )
    started = time.perf_counter()
    result = layer_filter_images(predictor, layer, steps=FILTER_STEPS)
    arrays["filter_images"] = result.images.astype(np.float16)
    arrays["filter_initial"] = result.initial.astype(np.float32)
    arrays["filter_final"] = result.final.astype(np.float32)
    arrays["filter_seconds"] = np.array(time.perf_counter() - started)
    return arrays


def read_record(path: Path) -> Recorded:
    import yaml

    from ferlab.runs import RunFolder

    path = Path(path)
    for name in ("config.yaml", "metrics.csv", "eval.json"):
        if not (path / name).is_file():
            raise FerlabError(f"{path}: not a recorded run (no {name})")
    summary = path / "metrics.json"
    metrics = json.loads(summary.read_text()) if summary.is_file() else {}
    return Recorded(
        path,
        yaml.safe_load((path / "config.yaml").read_text()),
        metrics,
        json.loads((path / "eval.json").read_text()),
        RunFolder(path).read_history(),
    )


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    file = Path(path) / FIGURES
    if not file.is_file():
        raise FerlabError(f"{path}: no {FIGURES} (record the CNN with its figures)")
    with np.load(file, allow_pickle=False) as z:  # a record never runs code
        return {k: z[k] for k in z.files}


def draw_figures(arrays: dict, faces, folder: Path, preprocess: dict) -> dict[str, Path]:
    """The study's figures 3 to 5 from a record's arrays, into `folder`; `faces` is a FaceSet
    holding the faces the arrays name, read raw (shown as the model saw them: `preprocess`
    is its card's, the model itself need not be at hand)."""
    from ferlab.explain.saliency import masked_faces
    from ferlab.plots import (
        plot_activations,
        plot_confusion,
        plot_filter_images,
        plot_saliency_panels,
    )

    classes = [str(c) for c in arrays["classes"]]
    drawn = {}
    matrix = confusion_matrix(arrays["val_probs"], arrays["val_labels"], len(classes))
    accuracy = float((arrays["val_probs"].argmax(1) == arrays["val_labels"]).mean())
    title = f"validation split, n={len(arrays['val_labels'])}, accuracy {accuracy:.1%}"
    drawn["confusion"] = plot_confusion(matrix, classes, folder / "vgg_confusion.png", title)
    seen = seen_faces(faces, arrays, preprocess)
    shown = seen["saliency"]
    for method in METHODS:
        maps = arrays[f"saliency_{method}"].astype(np.float32)
        titles = [
            f"true {classes[t]} / pred {classes[p]}"
            for t, p in zip(arrays["saliency_labels"], arrays["saliency_predicted"], strict=True)
        ]
        drawn[f"saliency_{method}"] = plot_saliency_panels(
            shown, maps, masked_faces(shown, maps), titles,
            folder / f"vgg_saliency_{method}.png", method,
        )  # fmt: skip
    layer = str(arrays["layer"])
    drawn["activations"] = plot_activations(
        seen["activation"], arrays["activations"].astype(np.float32), layer,
        str(arrays["activation_id"]), folder / "vgg_activations.png",
    )  # fmt: skip
    n = len(arrays["filter_final"])
    drawn["filters"] = plot_filter_images(
        arrays["filter_images"].astype(np.float32), list(range(n)), arrays["filter_final"],
        layer, FILTER_STEPS, folder / "vgg_filters.png",
    )  # fmt: skip
    return drawn


def confusion_matrix(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    keep = labels >= 0
    return normalize_rows(confusion_counts(labels[keep], probs[keep].argmax(1), k))


def seen_faces(faces, arrays: dict, preprocess: dict) -> dict[str, np.ndarray]:
    """The faces the arrays name (by content hash: any container of the same data serves),
    as the model saw them."""
    position = {h: i for i, h in enumerate(faces.hashes.tolist())}
    wanted = [str(h) for h in arrays["saliency_hashes"]] + [str(arrays["activation_hash"])]
    missing = [h for h in wanted if h not in position]
    if missing:
        raise FerlabError(f"the data holds no face of hash {missing[0]}: give the run's data")
    images = faces.images[[position[h] for h in wanted]]
    seen = Preprocess.from_dict(preprocess).apply(images)
    return {"saliency": seen[:-1], "activation": seen[-1]}


def eyes_and_mouth_share(maps: np.ndarray) -> float:
    """The share of the maps' mass on the eye and mouth rows (a quarter of the face each,
    together half of its area)."""
    maps = np.asarray(maps, np.float64)
    total = maps.sum()
    return float((maps[:, EYES].sum() + maps[:, MOUTH].sum()) / total) if total else 0.0


def full_study_context(records: Path, data: str | Path, figures: Path) -> dict:
    """Everything the full-study document says, its figures drawn into `figures`."""
    from ferlab.plots import plot_curves

    runs = {name: read_record(Path(records) / name) for name in RUNS}
    epochs = {name: r.evaluation["epochs"] for name, r in runs.items()}
    arrays = read_arrays(runs["vgg"].path)
    raw, fingerprint = load(data, preprocess=RAW)
    figures.mkdir(parents=True, exist_ok=True)
    draw_figures(arrays, raw.split("Training"), figures, runs["vgg"].evaluation["preprocess"])
    plot_curves(
        {RUNS[name]: r.history for name, r in runs.items()}, figures / "study_curves.png",
        "the study's networks trained on this data",
    )  # fmt: skip
    classes = [str(c) for c in arrays["classes"]]
    matrix = confusion_matrix(arrays["val_probs"], arrays["val_labels"], len(classes))
    from ferlab.evaluation.evaluate import CONFUSED_THRESHOLD

    confused = most_confused(matrix, classes, CONFUSED_THRESHOLD)
    beside = confused_beside_study(confused)
    ev = {name: r.evaluation for name, r in runs.items()}
    share = {m: eyes_and_mouth_share(arrays[f"saliency_{m}"]) for m in METHODS}
    raised = int((arrays["filter_final"] > arrays["filter_initial"]).sum())
    return {
        "runs": {name: {"name": RUNS[name], "record": r.path.as_posix(), **r.evaluation,
                        "recipe": r.config.get("recipe")} for name, r in runs.items()},
        "same_epochs": len(set(epochs.values())) == 1,
        "fingerprint": fingerprint,
        "confused": beside,
        "sentences": sentences(ev, beside, share, raised, len(arrays["filter_final"])),
        "layer": str(arrays["layer"]),
        "filter_seconds": float(arrays["filter_seconds"]),
        "filter_steps": FILTER_STEPS,
        "study_layer": STUDY_FILTER_LAYER,
    }  # fmt: skip


def sentences(ev: dict, beside: list[dict], share: dict, raised: int, filters: int) -> dict:
    """One sentence per figure: what agrees with the study and what does not, read off the
    numbers."""
    vgg, dnn, learns = (ev[k]["val"] for k in RUNS)
    majority = dnn["majority_accuracy"]
    agree = sum(r["verdict"] == "agree" for r in beside)
    partly = sum(r["verdict"] == "partly" for r in beside)
    return {
        "curves": curves_sentence(vgg["accuracy"], dnn["accuracy"], learns["accuracy"], majority),
        "confusion": (
            f"Of the {len(beside)} emotions, {agree} are confused as the study lists, {partly} "
            f"partly and {len(beside) - agree - partly} otherwise."
        ),
        "saliency": (
            "The study found the maps on the eyes and the mouth. Here "
            + ", ".join(f"{m} puts {s:.0%}" for m, s in share.items())
            + " of its mass on the eye and mouth rows, which are half of the face's area"
            + (
                " (more than an even spread: it agrees)."
                if min(share.values()) > 0.5
                else " (not more than an even spread for every method: it agrees only in part)."
            )
        ),  # fmt: skip
        "filters": (
            f"{raised} of {filters} filters were driven above their response to noise by "
            f"{FILTER_STEPS} ascent steps, as in the study's figure 5."
        ),
    }


def curves_sentence(vgg: float, dnn: float, learns: float, majority: float) -> str:
    """The study found its CNN far better than its DNN; say whether that holds here, and
    what the DNN that learns adds to it."""
    gap = vgg - dnn
    stuck = abs(dnn - majority) < 0.01
    first = (
        f"As in the study, the CNN is far better: the VGG reaches {vgg:.1%} validation accuracy, "
        f"the DNN with the study's settings {dnn:.1%} ({gap * 100:+.1f} points)"
        if gap >= 0.1
        else f"Unlike the study, the CNN is not far better here: the VGG reaches {vgg:.1%} "
        f"validation accuracy, the DNN with the study's settings {dnn:.1%}"
    )
    first += f", the majority class ({majority:.1%}): it never learns. " if stuck else ". "
    if learns > dnn:
        second = (
            f"The same network with LeakyReLU 0.5 and no dropout reaches {learns:.1%}: "
            f"{(learns - dnn) * 100:.1f} points of the gap are depth (a network too deep to "
            f"train with the study's settings), the other {(vgg - learns) * 100:.1f} the lack "
            "of convolutions."
            if vgg >= learns
            else f"The same network with LeakyReLU 0.5 and no dropout reaches {learns:.1%}, "
            "above the VGG: the gap here is depth, not the lack of convolutions."
        )
    else:
        second = (
            f"With LeakyReLU 0.5 and no dropout the same network reaches {learns:.1%}, no "
            "better: here depth does not explain the gap."
        )
    return first + second


def build_full_study(records: Path, data: str | Path, out: Path) -> Path:
    """report.md and report.html of the study at full size, from its records alone."""
    from ferlab.report.document import render_report
    from ferlab.runs import environment

    out = Path(out)
    started = time.monotonic()
    with staged_folder(out) as staging:
        figures = staging / "figures"
        context = full_study_context(records, data, figures)
        shutil.copy(Path(records) / "vgg" / "split.json", staging / "split.json")
        context |= {
            "title": "The study at full size: its own networks on this data",
            "environment": environment(),
            "records": str(records),
            "seconds": round(time.monotonic() - started, 1),
        }
        render_report(context, staging, figures, template="full_study.md.j2")
    return out / "report.html"
