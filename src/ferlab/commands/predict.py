"""`ferlab predict` on photos, folders of photos, videos and datasets: rows out, annotated
copies of photos."""

from pathlib import Path

import typer

from ferlab.commands.common import (
    MODEL_REF,
    counted,
    detector_option,
    err,
    force_option,
    min_face_option,
    out,
    runtime_option,
    say,
)
from ferlab.errors import FerlabError


def predict_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=MODEL_REF),
    target: Path = typer.Argument(..., metavar="INPUT", help="Photo, folder, video or dataset."),
    out_file: Path = typer.Option(None, "--out", help="Rows to write: .csv, .jsonl or .json."),
    annotate: Path = typer.Option(None, "--annotate", help="Folder for copies with boxes drawn."),
    detector: str = detector_option(),
    min_face: int = min_face_option(),
    every: int = typer.Option(10, "--every", help="Video: classify every Nth frame."),
    tta: bool = typer.Option(False, "--tta", help="Average each face over flips and 5 crops."),
    plot: bool = typer.Option(False, "--plot", help="Video: emotions over time, PNG by --out."),
    force: bool = force_option("Replace an existing --out / --annotate."),
    runtime: str = runtime_option(),
    workers: int = typer.Option(1, "--workers", help="Processes (or Ray actors) sharing it."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished --out."),
    engine: str = typer.Option("local", "--engine", help="local | ray (the ray extra)."),
    address: str = typer.Option(None, "--address", help="Ray cluster (default: a local Ray)."),
) -> None:
    """Emotions of the faces in photos or videos (detected), or of a dataset's faces."""
    from ferlab.inference import load_model
    from ferlab.photos.bulk import Job
    from ferlab.photos.media import checked_outputs, predict_media
    from ferlab.photos.rows import row_line

    figure = checked_outputs(target, out_file, annotate, plot, force, resume)
    if target.suffix.lower() in (".zip", ".csv"):
        from ferlab.evaluation import predict, write_predictions

        if out_file is None:
            raise FerlabError("--out FILE.csv is required for a dataset or test.csv")
        result = predict(load_model(model_ref, runtime=runtime), target, tta=tta)
        write_predictions(result, out_file)
        out.print(f"wrote {result.n} predictions to {out_file}")
        return

    def show(rows):
        for r in rows if out_file is None else ():
            say(out, row_line(r))

    # Rows printed on stdout are progress enough; written to a file, a bar on stderr says it.
    bar = out_file is not None
    job = Job(str(model_ref), runtime, detector, min_face, tta)
    summary = predict_media(
        job, target, out_file, annotate, every, show, figure, bar, workers, resume, engine, address
    )
    for message in summary["unreadable"]:
        say(err, f"ferlab: skipped {message}")
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
