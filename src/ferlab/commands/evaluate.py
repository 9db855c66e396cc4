"""`ferlab evaluate` (a dataset split, or labelled photos through the photo path) and
`ferlab compare` (several runs' curves and table)."""

import json
from pathlib import Path

import typer

from ferlab.atomic import output_folder
from ferlab.commands.common import (
    DETECTORS,
    MODEL_REF,
    detector_option,
    force_option,
    min_face_option,
    out,
    runtime_option,
)


def evaluate_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=MODEL_REF),
    data: Path = typer.Option(..., "--data"),
    split: str = typer.Option(
        None, "--split", help="val (the run's saved split) | Training | PublicTest | ..."
    ),
    tta: bool = typer.Option(False, "--tta", help="Average over flips and 5 crops."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_dir: Path = typer.Option(None, "--out", help="Write eval.json, confusion.png, ..."),
    force: bool = force_option(),
    runtime: str = runtime_option(),
    detector: str = detector_option(
        None,
        "DATA is a labelled folder/zip of photos (<emotion>/<photo>): run the photo path with "
        f"this detector ({DETECTORS}), largest face per photo.",
    ),
    min_face: int = min_face_option(),
) -> None:
    """Accuracy, macro F1, per-class metrics and the confusion matrix of a trained model."""
    from ferlab.inference import load_model
    from ferlab.photos.photo_eval import evaluation_lines, evaluation_report

    with output_folder(out_dir, force) as staging:
        predictor = load_model(model_ref, runtime=runtime)
        name = str(model_ref)
        r = evaluation_report(predictor, data, split, tta, detector, name, staging, min_face)
    if as_json:
        print(json.dumps(r, indent=1))
        return
    for line in evaluation_lines(r, data):
        out.print(line)
    if out_dir and detector is None:
        out.print(f"wrote {out_dir}/eval.json, confusion.png, most_confused.md, predictions.csv")


def compare_cmd(
    runs: list[Path] = typer.Argument(..., metavar="RUN..."),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = force_option(),
) -> None:
    """Table and overlaid training curves of several runs."""
    from ferlab.evaluation import compare

    with output_folder(out_dir, force) as staging:
        result = compare(runs, staging)
    out.print(result["markdown"])
