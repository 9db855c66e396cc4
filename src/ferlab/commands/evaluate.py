"""`ferlab evaluate` (a dataset split, or labelled photos through the photo path) and
`ferlab compare` (several runs' curves and table)."""

import json
from pathlib import Path

import typer

from ferlab.commands.common import (
    DETECTORS,
    MODEL_REF,
    detector_option,
    out,
    output_folder,
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
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --out."),
    runtime: str = runtime_option(),
    detector: str = detector_option(
        None,
        "DATA is a labelled folder/zip of photos (<emotion>/<photo>): run the photo path with "
        f"this detector ({DETECTORS}), largest face per photo.",
    ),
) -> None:
    """Accuracy, macro F1, per-class metrics and the confusion matrix of a trained model."""
    from ferlab.evaluation import evaluate, select_split, write_evaluation
    from ferlab.inference import load_model

    if detector is not None:  # "" is no detector's name, not "no detector"
        from ferlab.photos.detect import create_detector

        create_detector(detector)
    with output_folder(out_dir, force) as staging:
        predictor = load_model(model_ref, runtime=runtime)
        if detector is not None:
            from ferlab.photos.photo_eval import evaluate_photos

            r = evaluate_photos(predictor, data, detector, tta) | {"model": str(model_ref)}
            if staging:
                from ferlab.atomic import write_text_atomic

                write_text_atomic(staging / "eval.json", json.dumps(r, indent=1) + "\n")
        else:
            faces = select_split(predictor, data, split)
            ev = evaluate(
                predictor, faces, tta=tta, name=str(model_ref), split=split or faces.split_names[0]
            )
            if staging:
                write_evaluation(ev, staging)
    if detector is not None:
        if as_json:
            print(json.dumps(r, indent=1))
            return
        out.print(
            f"{model_ref} on photos {data} ({detector}{', TTA' if tta else ''}): n={r['n']}"
            f" accuracy {r['accuracy']:.2%},"
            f" a face found in {r['faces_found']} ({r['found_share']:.1%})"
        )
        for name in r["no_face"]:
            out.print(f"no face: {name}")
        return
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


def compare_cmd(
    runs: list[Path] = typer.Argument(..., metavar="RUN..."),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Table and overlaid training curves of several runs."""
    from ferlab.evaluation import compare

    with output_folder(out_dir, force) as staging:
        result = compare(runs, staging)
    out.print(result["markdown"])
