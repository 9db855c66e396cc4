"""`ferlab predict` on photos, folders of photos, videos and datasets: rows out, annotated
copies of photos."""

from pathlib import Path

import typer

from ferlab.atomic import refuse_special_file
from ferlab.commands.common import (
    MODEL_REF,
    counted,
    detector_option,
    err,
    new_output_dir,
    out,
    overlaps,
    runtime_option,
)
from ferlab.errors import FerlabError


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
    detector: str = detector_option(),
    every: int = typer.Option(10, "--every", help="Video: classify every Nth frame."),
    tta: bool = typer.Option(False, "--tta", help="Average each face over flips and 5 crops."),
    plot: bool = typer.Option(
        False, "--plot", help="Video: each emotion's probability over time, a PNG beside --out."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out / --annotate."),
    runtime: str = runtime_option(),
) -> None:
    """Emotions of the faces in photos or videos (detected), or of a dataset's faces."""
    from ferlab.inference import load_model
    from ferlab.photos.analyze import is_video
    from ferlab.photos.media import predict_media

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
        if output is not None and overlaps(output, target):
            raise FerlabError(f"{output}: is (or holds) the input {target}; choose another output")
    for output in (out_file, figure):
        if output is not None:
            refuse_special_file(output)
    if out_file is not None and out_file.exists() and not force:
        raise FerlabError(f"{out_file}: exists; choose a new file or use --force")
    if annotate is not None:
        new_output_dir(annotate, force)
    if target.suffix.lower() in (".zip", ".csv"):
        from ferlab.evaluation import predict, write_predictions

        if out_file is None:
            raise FerlabError("--out FILE.csv is required for a dataset or test.csv")
        result = predict(load_model(model_ref, runtime=runtime), target, tta=tta)
        write_predictions(result, out_file)
        out.print(f"wrote {result.n} predictions to {out_file}")
        return
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
        predictor, target, out_file, annotate, detector, every, on_rows=show, plot=figure, tta=tta
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
