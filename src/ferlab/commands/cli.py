"""The `ferlab` command: a thin shell over library functions; heavy imports happen per command."""

import csv
import json
import signal
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ferlab.atomic import PACKAGE_MODELS, PACKAGE_WEIGHTS_DIR
from ferlab.errors import FerlabError
from ferlab.photos.detect import list_detectors

# Choices in help texts come from the registries, so they cannot go stale.
DETECTORS = " | ".join(list_detectors())
SHIPPED = ", ".join(sorted(p.stem for p in PACKAGE_WEIGHTS_DIR.glob("*.pt")))
MODEL_REF = f"Run folder, checkpoint file, .onnx file, or a shipped model ({SHIPPED})."
TORCH_MODEL_REF = f"Run folder, checkpoint file, or a shipped model ({SHIPPED})."


app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Facial expression recognition on FER2013.",
)
data_app = typer.Typer(no_args_is_help=True, help="Read, inspect and convert FER2013 data.")
app.add_typer(data_app, name="data")
explain_app = typer.Typer(no_args_is_help=True, help="Look inside a trained model.")
app.add_typer(explain_app, name="explain")
out = Console(soft_wrap=True)  # a long line stays one line in logs and pipes
err = Console(stderr=True)


@data_app.command("info")
def data_info(
    data: Path = typer.Argument(..., help="Folder, .zip, fer2013.csv or train.csv/test.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode again; do not use the cache."),
) -> None:
    """Counts per split and emotion, exact duplicates within and across splits."""
    from ferlab.data import RAW, duplicate_summary, load

    faces, fp = load(data, preprocess=RAW, use_cache=not no_cache)
    summary = faces.summary() | {"fingerprint": fp, "duplicates": duplicate_summary(faces)}
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{data}  ({len(faces)} faces, {faces.resized} resized to 48x48)")
    table.add_column("split")
    table.add_column("total", justify="right")
    for name in faces.classes:
        table.add_column(name, justify="right")
    for split, entry in summary["splits"].items():
        counts = (str(entry["per_class"][e]) for e in faces.classes)
        table.add_row(split, str(entry["total"]), *counts)
    out.print(table)
    for split, entry in summary["splits"].items():
        if "votes" in entry:  # FER+
            v = entry["votes"]
            gone = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in v["left_out"].items())
            out.print(
                f"{split}: {v['kept']} faces with a majority label (FERPlus's rule); left out: "
                f"{gone}; raters' mean agreement {v['mean_agreement']:.1%}"
            )
    dup = summary["duplicates"]
    for split, d in dup["within"].items():
        out.print(
            f"{split}: {d['groups']} groups of identical faces ({d['extra_copies']} extra copies,"
            f" {d['label_conflicts']} with disagreeing labels), {dup['blank'][split]} blank faces"
        )
    for pair, n in dup["across"].items():
        out.print(f"{pair}: {n} faces with an identical copy")
    out.print(f"fingerprint {fp}")


@data_app.command("convert")
def data_convert(
    data: Path = typer.Argument(..., help="Any readable FER2013 source."),
    out_path: Path = typer.Argument(..., metavar="OUT", help="New output folder."),
    fmt: str = typer.Option(..., "--format", help="folders | fer2013-csv | ntu-csv"),
) -> None:
    """Write the data in another format (raw pixels, no preprocessing)."""
    from ferlab.data import RAW, convert, load

    faces, _ = load(data, preprocess=RAW)
    convert(faces, fmt, out_path)
    out.print(f"wrote {len(faces)} faces as {fmt} to {out_path}")


@data_app.command("split")
def data_split(
    data: Path = typer.Argument(..., help="A source with a Training split."),
    out_path: Path = typer.Option(..., "--out", help="Split file to write (JSON)."),
    fraction: float = typer.Option(0.1, "--val-fraction"),
    split_seed: int = typer.Option(0, "--split-seed", "--seed", help="Seed of the draw."),
) -> None:
    """Carve a stratified, seeded validation split from Training (identical faces kept on one
    side) and save it: content hashes and ids of its faces."""
    from ferlab.data import RAW, carve_validation, load

    if out_path.exists():
        raise FerlabError(f"{out_path}: already exists; choose a new path")
    faces, _ = load(data, preprocess=RAW)
    split = carve_validation(faces, fraction, split_seed)
    split.save(out_path)
    out.print(f"wrote {len(split.ids)} validation faces to {out_path}")


@app.command("models")
def models_list(pattern: str = typer.Argument("*", help="Wildcard, e.g. 'vgg*'.")) -> None:
    """List the registered models."""
    from ferlab.models import create, describe, keras_param_counts, list_models

    table = Table()
    for col in ("name", "params", "description"):
        table.add_column(col)
    for name in list_models(pattern):
        table.add_row(name, f"{keras_param_counts(create(name)).total:,}", describe(name))
    out.print(table)
    from ferlab.inference import load_model, shipped_models

    shipped = Table(title="Trained models in the package (MODEL_REF)")
    for col in ("name", "network", "recipe", "PublicTest", "validation"):
        shipped.add_column(col)
    for name in shipped_models():
        card = load_model(name, runtime="torch").card
        metrics = card.metrics or {}
        shipped.add_row(
            name,
            card.model,
            card.recipe or "",
            *(
                f"{metrics[k]['accuracy']:.1%}" if k in metrics else ""
                for k in ("PublicTest", "val")
            ),
        )
    out.print(shipped)


@app.command("summary")
def summary(model: str = typer.Argument(..., help="Registered model name.")) -> None:
    """Keras-style layer table with total, trainable and non-trainable parameters."""
    from ferlab.models import create, keras_param_counts, summary_rows

    _note_renamed(model)
    net = create(model)
    table = Table(title=net.model_name)
    for col, justify in (
        ("layer", "left"),
        ("type", "left"),
        ("output shape", "left"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify)
    for row in summary_rows(net):
        table.add_row(row.name, row.kind, str(row.output_shape), f"{row.params:,}")
    out.print(table)
    counts = keras_param_counts(net)
    out.print(f"Total params: {counts.total:,}")
    out.print(f"Trainable params: {counts.trainable:,}")
    out.print(f"Non-trainable params: {counts.non_trainable:,}")


def train_cmd(
    data: Path = typer.Option(
        None, "--data", help="FER2013 source with a Training split \\[default: the config's]."
    ),
    run: Path = typer.Option(..., "--out", help="Run folder to create."),
    config: Path = typer.Option(
        None,
        "--config",
        help="Start from a saved config.yaml (e.g. RUN/config.yaml); options override it.",
    ),
    recipe: str = typer.Option(
        None, "--recipe", help="Start from a packaged recipe (e.g. flagship); options override it."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    extend_epochs: int = typer.Option(
        0, "--extend-epochs", help="With --resume: continue the schedule over N more epochs."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar; one line per epoch."),
    **given,
) -> None:
    """Train a model; the run folder keeps config, split, metrics, curves and checkpoints."""
    from ferlab.runs import RunFolder
    from ferlab.training import TrainConfig, train
    from ferlab.training.config import config_settings, recipe_settings

    given = {k: str(v) if isinstance(v, Path) else v for k, v in given.items() if v is not None}
    _note_renamed(given.get("model"))
    settings = recipe_settings(recipe) if recipe else {}
    if config:
        settings |= config_settings(config)
    settings |= given
    data = data or settings.pop("data", None)
    settings.pop("data", None)
    if not data and not resume:
        raise FerlabError("--data is required (or --config with a run's config.yaml)")
    if resume:  # the run's config.yaml rules; what was given must agree with it
        cfg = TrainConfig(
            data=str(data or ""), out=str(run), quiet=quiet, minutes=given.get("minutes")
        )
    else:
        cfg = TrainConfig(data=str(data), out=str(run), quiet=quiet, **settings)
    result = train(cfg, resume=resume, force=force, given=settings, extend_epochs=extend_epochs)
    if result is None:
        return
    m = result.metrics
    val = m.get("val", {}).get("accuracy")
    out.print(
        f"{result.out}: stopped by {result.stopped_by} after {m['epochs_completed']} epochs;"
        f" best val accuracy {val if val is not None else 'n/a'}"
    )
    if result.stopped_by in ("interrupt", "budget"):
        if RunFolder(run).last.is_file():
            out.print(f"resume with: ferlab train --out {run} --resume")
        else:
            out.print("no epoch was finished, so there is nothing to resume: start it again")
    if result.stopped_by == "interrupt":
        sys.exit(130)


def _with_config_options(command):
    """Give `command` one option per TrainConfig setting (ferlab.training.config.setting), so
    the settings are declared once; each defaults to None, meaning "not given"."""
    import inspect
    import typing

    from ferlab.training.config import cli_settings, flag_of

    params = [p for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    for f in cli_settings():
        kind = f.type if isinstance(f.type, type) else typing.get_args(f.type)[0]  # X | None
        flag = flag_of(f)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        choices = f.metadata["choices"]
        default = f.default if f.default is not None else "none"
        help_text = f.metadata["help"] + (f" \\[{' | '.join(choices)}]" if choices else "")
        help_text += f" \\[default: {default}]"  # escaped: rich reads [..] as markup
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, *decls, help=help_text, show_default=False),
                annotation=kind | None,
            )
        )
    command.__signature__ = inspect.Signature(params)
    return app.command("train")(command)


train_cmd = _with_config_options(train_cmd)


def _note_renamed(*names: str | None) -> None:
    """Old model names still work; say the new one so that scripts can move on."""
    from ferlab.models.registry import RENAMED

    for name in names:
        if name in RENAMED:
            err.print(
                f"ferlab: note: model '{name}' is now called '{RENAMED[name]}'",
                markup=False,
                highlight=False,
            )


def runtime_option():
    return typer.Option(
        None,
        "--runtime",
        help="onnx | torch \\[default: onnx when the export extra is installed, else torch].",
    )


def _new_output_dir(path: Path, force: bool) -> None:
    if path.exists() and any(path.iterdir()) and not force:
        raise FerlabError(f"{path}: exists and is not empty; choose a new folder or use --force")


@app.command("evaluate")
def evaluate_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=MODEL_REF),
    data: Path = typer.Option(..., "--data"),
    split: str = typer.Option(
        None, "--split", help="val (the run's saved split) | Training | PublicTest | ..."
    ),
    tta: bool = typer.Option(False, "--tta", help="Average over flips and 5 crops."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_dir: Path = typer.Option(None, "--out", help="Write eval.json, confusion.png, ..."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --out."),
    runtime: str = runtime_option(),
    detector: str = typer.Option(
        None,
        "--detector",
        help="DATA is a labelled folder/zip of photos (<emotion>/<photo>): run the photo path "
        f"with this detector ({DETECTORS}), largest face per photo.",
    ),
) -> None:
    """Accuracy, macro F1, per-class metrics and the confusion matrix of a trained model."""
    from ferlab.evaluation import evaluate, select_split, write_evaluation
    from ferlab.inference import load_model

    if out_dir:
        _new_output_dir(out_dir, force)
    predictor = load_model(model_ref, runtime=runtime)
    if detector:
        from ferlab.photos.photo_eval import evaluate_photos

        r = evaluate_photos(predictor, data, detector) | {"model": str(model_ref)}
        if out_dir:
            from ferlab.atomic import write_text_atomic

            write_text_atomic(out_dir / "eval.json", json.dumps(r, indent=1) + "\n")
        if as_json:
            print(json.dumps(r, indent=1))
            return
        out.print(
            f"{model_ref} on photos {data} ({detector}): n={r['n']} accuracy {r['accuracy']:.2%},"
            f" a face found in {r['faces_found']} ({r['found_share']:.1%})"
        )
        for name in r["no_face"]:
            out.print(f"no face: {name}")
        return
    faces = select_split(predictor, data, split)
    ev = evaluate(
        predictor, faces, tta=tta, name=str(model_ref), split=split or faces.split_names[0]
    )
    if out_dir:
        write_evaluation(ev, out_dir)
    if as_json:
        print(json.dumps(ev.report, indent=1))
        return
    r = ev.report
    out.print(
        f"{model_ref} on {r['split']}: n={r['n']} accuracy {r['accuracy']:.2%} "
        f"(majority class {r['majority_accuracy']:.2%}) macro-F1 {r['macro_f1']:.3f}"
        + (f" (TTA {r['tta']})" if r["tta"] else "")
    )
    if "class_mapping" in r:
        pairs = ", ".join(f"{a} -> {b}" for a, b in r["class_mapping"].items() if a != b)
        out.print(
            f"classes mapped to the model's: {pairs or 'same names'}; "
            f"{r['left_out_unmapped']} faces of classes the model lacks left out"
        )
    if "votes" in r:
        v = r["votes"]
        out.print(
            f"against the raters' votes: the answer got the most votes on {v['top_voted']:.2%} "
            f"of the faces; {v['vote_share']:.2%} of a face's votes went to it on average"
        )
    if out_dir:
        out.print(f"wrote {out_dir}/eval.json, confusion.png, most_confused.md, predictions.csv")


def _overlaps(output: Path, target: Path) -> bool:
    """Whether writing `output` (with --force) would replace `target` or anything in it."""
    out, src = output.resolve(), target.resolve()
    return out == src or src in out.parents or out in src.parents


@app.command("predict")
def predict_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=MODEL_REF),
    target: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="A photo, a folder of photos, a video, a dataset (.zip/.csv) or test.csv.",
    ),
    out_file: Path = typer.Option(
        None, "--out", help="Rows to write: .csv or .json (datasets: .csv; required)."
    ),
    annotate: Path = typer.Option(
        None, "--annotate", help="Folder for copies with boxes, emotions and confidences."
    ),
    detector: str = typer.Option("yunet", "--detector", help=f"Face detector: {DETECTORS}."),
    every: int = typer.Option(10, "--every", help="Video: classify every Nth frame."),
    tta: bool = typer.Option(False, "--tta", help="Datasets: flip + 5-crop averaging."),
    plot: bool = typer.Option(
        False, "--plot", help="Video: each emotion's probability over time, a PNG beside --out."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out / --annotate."),
    runtime: str = runtime_option(),
) -> None:
    """Emotions of the faces in photos or videos (detected), or of a dataset's faces."""
    from ferlab.inference import load_model
    from ferlab.photos.analyze import is_video

    figure = None
    if plot:
        if not is_video(target):
            raise FerlabError(f"{target}: --plot draws a video's timeline; this is not a video")
        if out_file is None:
            raise FerlabError("--plot writes its figure beside the rows: give --out FILE")
        figure = out_file.with_suffix(".png")
        if figure.exists() and not force:
            raise FerlabError(f"{figure}: exists; choose a new --out or use --force")

    for output in (out_file, annotate):
        if output is not None and _overlaps(output, target):
            raise FerlabError(f"{output}: is (or holds) the input {target}; choose another output")
    if out_file is not None and out_file.exists() and not force:
        raise FerlabError(f"{out_file}: exists; choose a new file or use --force")
    if annotate is not None:
        _new_output_dir(annotate, force)
    if target.suffix.lower() in (".zip", ".csv"):
        from ferlab.evaluation import predict, write_predictions

        if out_file is None:
            raise FerlabError("--out FILE.csv is required for a dataset or test.csv")
        result = predict(load_model(model_ref, runtime=runtime), target, tta=tta)
        write_predictions(result, out_file)
        out.print(f"wrote {result.n} predictions to {out_file}")
        return
    from ferlab.commands.photos import predict_media

    predictor = load_model(model_ref, runtime=runtime)

    def show(rows):
        if out_file is None:
            for r in rows:
                where = r["file"] + (f" frame {r['frame']}" if "frame" in r else "")
                if r["emotion"] is None:
                    out.print(f"{where}: no face found")
                else:
                    out.print(
                        f"{where}: face {r['face']} at {r['box']}: {r['emotion']} "
                        f"({r['confidence']:.0%})"
                    )

    summary = predict_media(
        predictor, target, out_file, annotate, detector, every, on_rows=show, plot=figure
    )
    for message in summary["unreadable"]:
        err.print(f"ferlab: skipped {message}", markup=False, highlight=False, soft_wrap=True)
    found = ", ".join(f"{k} {v}" for k, v in summary["emotions"].items()) or "none"
    unit = "frame" if "every" in summary else "image"
    out.print(
        f"{counted(summary['images'], unit)}, {counted(summary['faces'], 'face')} ({found}); "
        f"{summary['images_without_faces']} without a face"
        + (f"; rows in {out_file}" if out_file else "")
        + (f"; timeline in {figure}" if figure else "")
    )
    if summary["unreadable"]:
        n = len(summary["unreadable"])
        raise FerlabError(
            f"{counted(n, 'input file')} could not be read (listed above); the rows of "
            f"{counted(summary['images'], 'readable ' + unit)} were written"
        )


def counted(n: int, noun: str) -> str:
    """'1 face', '2 faces'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(..., metavar="RUN..."),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Table and overlaid training curves of several runs."""
    from ferlab.evaluation import compare

    _new_output_dir(out_dir, force)
    result = compare(runs, out_dir)
    out.print(result["markdown"])


@app.command("layers")
def layers_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
) -> None:
    """Layer names usable by `ferlab explain activations|filters`, with output shapes."""
    from ferlab.explain import layer_names
    from ferlab.inference import load_model

    table = Table()
    table.add_column("layer")
    table.add_column("output shape")
    for name, shape in layer_names(load_model(model_ref, runtime="torch").model):
        table.add_row(name, str(shape))
    out.print(table)


@explain_app.command("saliency")
def explain_saliency(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    data: Path = typer.Option(..., "--data"),
    split: str = typer.Option(None, "--split", help="Default: PublicTest, or the only split."),
    per_class: int = typer.Option(2, "--per-class", help="Faces per emotion."),
    ids: list[str] = typer.Option(None, "--ids", help="Face ids instead of --per-class."),
    method: str = typer.Option(
        "gradient", "--method", help="gradient | smoothgrad | integrated-gradients | gradcam"
    ),
    target: str = typer.Option("predicted", "--target", help="predicted | true | EMOTION"),
    sample: int = typer.Option(700, "--sample", help="Faces for the class-average maps."),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Saliency maps for chosen faces, and a class-average map per emotion."""
    from ferlab.commands.explain import saliency_report

    _new_output_dir(out_dir, force)
    files = saliency_report(model_ref, data, split, per_class, ids, method, target, sample, out_dir)
    out.print("wrote " + ", ".join(str(f) for f in files))


@explain_app.command("check")
def explain_check(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    data: Path = typer.Option(..., "--data"),
    split: str = typer.Option("val", "--split", help="val (the run's saved split) | PublicTest"),
    n: int = typer.Option(200, "--n", help="Faces for deletion and insertion (seeded draw)."),
    cascade_faces: int = typer.Option(
        50, "--cascade-faces", help="The first of them for randomization and stability."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_dir: Path = typer.Option(None, "--out", help="Write trust.json and two figures here."),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Can the saliency maps be trusted? Randomization, deletion/insertion, stability."""
    from ferlab.commands.explain import trust_report

    if out_dir is not None:
        _new_output_dir(out_dir, force)
    result = trust_report(model_ref, data, split, n, cascade_faces, out_dir)
    if as_json:
        print(json.dumps(result, indent=1))
        return
    table = Table(title=f"{model_ref} on {result['n']} {split} faces")
    for column in ("method", "randomized (Spearman)", "passes", "deletion AUC", "insertion AUC",
                   "shift", "flip"):  # fmt: skip
        table.add_column(column)
    for name, m in result["methods"].items():
        passes = "yes" if m["passes_randomization"] else "no"
        table.add_row(name, f"{m['spearman'][-1]:.2f}", passes, f"{m['deletion_auc']:.3f}",
                      f"{m['insertion_auc']:.3f}", f"{m['shift_spearman']:.2f}",
                      f"{m['flip_spearman']:.2f}")  # fmt: skip
    for name, m in result["baselines"].items():  # orders, not maps of the model: no cascade
        table.add_row(f"{name} (baseline)", "", "", f"{m['deletion_auc']:.3f}",
                      f"{m['insertion_auc']:.3f}", "", "")  # fmt: skip
    out.print(table)
    wrote = f"; wrote {out_dir}" if out_dir else ""
    out.print(f"most trustworthy here: {result['best']}{wrote}")


@explain_app.command("activations")
def explain_activations(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    layer: str = typer.Option(..., "--layer", help="See `ferlab layers MODEL_REF`."),
    image: str = typer.Option(..., "--image", help="An image file, or a face id in --data."),
    data: Path = typer.Option(None, "--data"),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """The output of every filter of one layer for one face, as one grid."""
    from ferlab.commands.explain import activations_report

    _new_output_dir(out_dir, force)
    out.print(f"wrote {activations_report(model_ref, layer, image, data, out_dir)}")


@explain_app.command("filters")
def explain_filters(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    layer: str = typer.Option(..., "--layer", help="A conv layer name, or 'logits'."),
    filters: str = typer.Option(None, "--filters", help="e.g. 0-15,20 (default: all)"),
    steps: int = typer.Option(200, "--steps"),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Gradient-ascent images that excite each filter (or class output) most."""
    from ferlab.commands.explain import filters_report

    _new_output_dir(out_dir, force)
    path, seconds = filters_report(model_ref, layer, filters, steps, out_dir)
    out.print(f"wrote {path} in {seconds:.1f} s")


@app.command("export")
def export_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    onnx_path: Path = typer.Option(None, "--onnx", help="Write an ONNX model here."),
    weights: Path = typer.Option(
        None, "--weights", help="Write a small weights file (what `default` ships) here."
    ),
    metrics: Path = typer.Option(
        None, "--metrics", help="JSON of measured metrics to store with --weights."
    ),
    int8: bool = typer.Option(
        False, "--int8", help="Quantize --onnx to int8, calibrated on the validation faces."
    ),
    data: Path = typer.Option(
        None, "--data", help="--int8: the FER2013 source its validation split is read from."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
) -> None:
    """Export a trained model: ONNX (dynamic batch, fp32 or int8) and/or a self-describing
    weights file."""
    from ferlab.export import export_onnx, export_onnx_int8, export_weights, shipping_card
    from ferlab.inference import load_model

    if not onnx_path and not weights:
        raise FerlabError("nothing to export: give --onnx OUT and/or --weights OUT")
    if int8 and not (onnx_path and data):
        raise FerlabError("--int8 quantizes the --onnx export: give --onnx OUT and --data DATA")
    for target in (onnx_path, weights):
        if target and target.exists() and not force:
            raise FerlabError(f"{target}: exists; use --force to replace it")
    predictor = load_model(model_ref, runtime="torch")
    if weights:
        measured = None
        if metrics:
            try:
                measured = json.loads(metrics.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise FerlabError(f"{metrics}: not a readable JSON file ({e})") from None
        export_weights(predictor.model, shipping_card(predictor, measured), weights)
        out.print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB)")
    if onnx_path and int8:
        from ferlab.evaluation import select_split

        val = select_split(predictor, data, "val")
        export_onnx_int8(predictor, onnx_path, val.images, val.labels)
        out.print(
            f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, int8, calibrated on "
            f"{len(val.images)} validation faces)"
        )
    elif onnx_path:
        export_onnx(predictor, onnx_path)
        out.print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB)")


@app.command("ship")
def ship_cmd(
    run: Path = typer.Argument(..., help="Run folder whose selected checkpoint ships."),
    name: str = typer.Option(..., "--as", help=f"Package model: {' | '.join(PACKAGE_MODELS)}."),
    data: Path = typer.Option(..., "--data", help="FER2013 source of its split and PublicTest."),
    record: Path = typer.Option(
        None, "--record", help="Folder for metrics.json (default: results/NAME)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a shipped model that scored higher on validation."
    ),
) -> None:
    """Ship a run as a package model: measured on validation and PublicTest (plain and TTA),
    recorded, and written into the package: the only way a model gets there."""
    from ferlab.shipping import ship

    shipped = ship(run, name, data, record or Path("results") / name, force)
    m = shipped.metrics
    out.print(
        f"shipped {run} as {name} ({shipped.weights}): validation {m['val']['accuracy']:.2%} "
        f"({m['val']['accuracy_tta']:.2%} TTA), PublicTest {m['PublicTest']['accuracy']:.2%} "
        f"({m['PublicTest']['accuracy_tta']:.2%} TTA)"
    )


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(7860, "--port"),
    model: list[str] = typer.Option(
        None,
        "--model",
        help="Runs or checkpoints to offer besides the shipped models (repeatable).",
    ),
    detector: str = typer.Option("yunet", "--detector", help=f"Face detector: {DETECTORS}."),
    runtime: str = runtime_option(),
) -> None:
    """Web demo: upload, drop or take a photo; faces boxed with emotion bars and saliency."""
    from ferlab.commands.serve import serve
    from ferlab.inference import shipped_models
    from ferlab.runtime import check_runtime

    refs = shipped_models() + [ref for ref in model or [] if ref not in shipped_models()]
    runtime = check_runtime(runtime)
    onnx_files = [ref for ref in refs if ref.lower().endswith(".onnx")]
    if onnx_files:  # the page explains each answer by the torch model's gradients
        raise FerlabError(f"{onnx_files[0]}: serve takes runs and checkpoints, not .onnx files")
    out.print(f"serving on http://{host}:{port} (Ctrl-C stops; probabilities by {runtime})")
    serve(host, port, refs, detector, runtime=runtime)


GET_FER2013 = (
    "no FER2013 data: pass --data or set FERLAB_DATA to fer2013.csv (Kaggle: 'Challenges in "
    "Representation Learning: Facial Expression Recognition Challenge') or a folder/zip of "
    "train/ and test/ images (Kaggle dataset msambare/fer2013)"
)


def default_data() -> Path:
    """FERLAB_DATA, else the shared copy beside the project (run from the project root)."""
    import os

    if os.environ.get("FERLAB_DATA"):
        return Path(os.environ["FERLAB_DATA"])
    shared = Path("../shared/data/fer2013.zip")
    if shared.is_file():
        return shared
    raise FerlabError(GET_FER2013)


@app.command("report")
def report_cmd(
    data: Path = typer.Option(
        None, "--data", help="FER2013 source \\[default: $FERLAB_DATA, else ../shared/data]."
    ),
    report_dir: Path = typer.Option(..., "--out", help="Report folder (rerun it to resume)."),
    quick: bool = typer.Option(
        False, "--quick", help="A fixed short share of each recipe (about 10 min here)."
    ),
    cnn: str = typer.Option("cnn-baseline", "--cnn", help="Registered CNN to train."),
    dnn: str = typer.Option("dnn-study", "--dnn", help="Registered deep dense network."),
    control: str = typer.Option(
        "dense-control", "--control", help="Shallow dense network of the same size."
    ),
    minutes: float = typer.Option(
        None, "--minutes", help="Train to this time budget instead of fixed work."
    ),
    reuse: list[str] = typer.Option(
        None, "--reuse", help="A finished run to use instead: ROLE=RUN (cnn, dnn, control)."
    ),
    seed: int = typer.Option(0, "--seed"),
    layer: str = typer.Option(None, "--layer", help="CNN layer for the filter figures."),
    quiet: bool = typer.Option(False, "--quiet", help="No training progress bars."),
) -> None:
    """The whole study in one command: train, compare, evaluate, explain; write report.html."""
    from ferlab.commands.report import Interrupted, ReportConfig, build_report

    _note_renamed(cnn, dnn, control)
    cfg = ReportConfig(
        data=str(data or default_data()),
        out=str(report_dir),
        quick=quick,
        cnn=cnn,
        dnn=dnn,
        control=control,
        minutes=minutes,
        reuse=list(reuse or []),
        seed=seed,
        layer=layer,
        quiet=quiet,
    )
    try:
        build_report(cfg, console=err)
    except Interrupted as e:
        err.print(f"interrupted; {e} is resumable: run the same command again to continue")
        sys.exit(130)


# What reading hostile input or writing to an unusable place raises, when no reader turned it
# into a FerlabError with more context first: caught by kind, so cases nobody listed are
# covered too.
BOUNDARY_ERRORS = (
    OSError,  # missing, unreadable or read-only paths, full disks, damaged files
    zipfile.BadZipFile,
    zlib.error,
    csv.Error,
    UnicodeError,
    EOFError,
)


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C: temporary files and folders are removed


def _fail(message: str) -> None:
    message = " ".join(message.split("\n"))  # one line, whatever a library put in its message
    err.print(f"ferlab: error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def main(args: list[str] | None = None) -> None:
    """The `ferlab` command (args: instead of sys.argv[1:])."""
    signal.signal(signal.SIGTERM, _sigterm)
    # A command's output is its results: the libraries' notices about their own future
    # (deprecations inside torch, Lightning, gradio) are for their developers, not our users.
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    try:
        app(args=args)
    except FerlabError as e:
        _fail(str(e))
    except BOUNDARY_ERRORS as e:
        where = getattr(e, "filename", None)
        what = getattr(e, "strerror", None) or str(e) or type(e).__name__
        _fail(f"{where}: {what}" if where else f"{what} ({type(e).__name__})")
    except KeyboardInterrupt:
        err.print("ferlab: interrupted")
        sys.exit(130)
