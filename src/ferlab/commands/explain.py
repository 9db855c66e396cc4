"""`ferlab explain saliency|check|activations|filters`: options, messages and output folders
around ferlab.explain.reports."""

import json
from pathlib import Path

import typer

from ferlab.atomic import output_folder
from ferlab.commands.common import TORCH_MODEL_REF, force_option, out, table
from ferlab.errors import FerlabError
from ferlab.explain.methods import METHODS


def explain_saliency(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    data: Path = typer.Option(None, "--data", help="Faces of a data set (or --image)."),
    image: Path = typer.Option(None, "--image", help="A photo: explain each face found in it."),
    split: str = typer.Option(None, "--split", help="Default: PublicTest, or the only split."),
    per_class: int = typer.Option(2, "--per-class", help="Faces per emotion."),
    ids: list[str] = typer.Option(None, "--ids", help="Face ids instead of --per-class."),
    method: str = typer.Option("gradient", "--method", help=" | ".join(METHODS)),
    target: str = typer.Option("predicted", "--target", help="predicted | true | EMOTION"),
    sample: int = typer.Option(700, "--sample", help="Faces for the class-average maps."),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = force_option(),
) -> None:
    """Saliency maps for chosen faces and a class-average map per emotion, or for each face
    found in a photo."""
    from ferlab.api import explain_photo
    from ferlab.errors import at_least_one
    from ferlab.explain.reports import saliency_report

    at_least_one(per_class=per_class, sample=sample)
    if (data is None) == (image is None):
        raise FerlabError("give --data (faces of a data set) or --image (a photo), one of them")
    with output_folder(out_dir, force) as staging:
        if image is not None:
            files = explain_photo(model_ref, image, staging, method)
        else:
            files = saliency_report(
                model_ref, data, split, per_class, ids, method, target, sample, staging
            )
    out.print("wrote " + ", ".join(str(out_dir / Path(f).relative_to(staging)) for f in files))


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
    force: bool = force_option(),
) -> None:
    """Can the saliency maps be trusted? Randomization, deletion/insertion, stability."""
    from ferlab.errors import at_least_one
    from ferlab.explain.reports import trust_report, trust_rows

    at_least_one(n=n, cascade_faces=cascade_faces)

    with output_folder(out_dir, force) as staging:
        result = trust_report(model_ref, data, split, n, cascade_faces, staging)
    if as_json:
        print(json.dumps(result, indent=1))
        return
    columns, rows = trust_rows(result)
    out.print(table(columns, rows, f"{model_ref} on {result['n']} {split} faces"))
    for name, why in result["not_applicable"].items():
        out.print(f"{name}: not applicable ({why})")
    wrote = f"; wrote {out_dir}" if out_dir else ""
    out.print(f"most trustworthy here: {result['best']}{wrote}")


def explain_activations(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    layer: str = typer.Option(..., "--layer", help="See `ferlab layers MODEL_REF`."),
    image: str = typer.Option(..., "--image", help="An image file, or a face id in --data."),
    data: Path = typer.Option(None, "--data"),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = force_option(),
) -> None:
    """The output of every filter of one layer for one face, as one grid."""
    from ferlab.explain.reports import activations_report

    with output_folder(out_dir, force) as staging:
        path = activations_report(model_ref, layer, image, data, staging)
    out.print(f"wrote {out_dir / Path(path).relative_to(staging)}")


def explain_filters(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    layer: str = typer.Option(..., "--layer", help="A conv layer name, or 'logits'."),
    filters: str = typer.Option(None, "--filters", help="e.g. 0-15,20 (default: all)"),
    steps: int = typer.Option(200, "--steps"),
    out_dir: Path = typer.Option(..., "--out"),
    force: bool = force_option(),
) -> None:
    """Gradient-ascent images that excite each filter (or class output) most."""
    from ferlab.errors import at_least_one
    from ferlab.explain.reports import filters_report

    at_least_one(steps=steps)

    with output_folder(out_dir, force) as staging:
        path, seconds = filters_report(model_ref, layer, filters, steps, staging)
    out.print(f"wrote {out_dir / Path(path).relative_to(staging)} in {seconds:.1f} s")
