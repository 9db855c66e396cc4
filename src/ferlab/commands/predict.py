"""`ferlab predict` on photos, folders of photos, videos and datasets: rows out, annotated
copies of photos."""

from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import typer
from PIL import Image

from ferlab.atomic import refuse_special_file, staged_folder
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
from ferlab.inference import Predictor
from ferlab.photos.analyze import (
    analyze_image,
    emotion_timeline,
    face_rows,
    image_inputs,
    is_video,
    iter_video,
    read_photo,
    summarize,
    video_fps,
)
from ferlab.photos.detect import create_detector
from ferlab.photos.draw import annotate, save_jpeg
from ferlab.photos.rows import check_rows_path, row_file


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


def _annotated_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    return "__".join(rel.with_suffix("").parts) + ".jpg"


def _plot_video(rows: list[dict], labels: list[str], target: Path, path: Path) -> Path:
    from ferlab.plots import plot_timeline

    frames, probs = emotion_timeline(rows, labels)
    fps = video_fps(target)
    times, unit = (frames / fps, "seconds") if fps else (frames, "frame")
    title = f"{target.name}: emotions over time"
    return plot_timeline(times, probs, labels, path, unit, title)


def predict_media(
    predictor: Predictor,
    target: Path,
    out: Path | None = None,
    annotate_dir: Path | None = None,
    detector: str = "yunet",
    every: int = 10,
    on_rows=None,
    plot: Path | None = None,
    tta: bool = False,
) -> dict:
    """Classify every face in a photo, a folder of photos or a video; returns the summary.
    Unreadable photos are listed in summary['unreadable'], the others still get their rows.
    `plot`: a video's emotion timeline (each emotion's probability over time) to this PNG.
    `tta`: each face's probabilities averaged over flips and crops."""
    if not target.exists():
        raise FerlabError(f"{target}: no such file or folder")
    video = is_video(target)
    if plot is not None and not video:
        raise FerlabError(f"{target}: --plot draws a video's timeline; this is not a video")
    detect = create_detector(detector)
    labels = predictor.classes
    video_rows = []
    inputs = None if video else image_inputs(target)  # fails early on an empty folder
    check_rows_path(out)
    emotions, bad, counts = Counter(), [], Counter()
    with ExitStack() as stack:
        # Annotated copies gather in a hidden folder beside the destination and move there
        # when all are written: an interrupted or failed run leaves no half set behind.
        staging = None
        if annotate_dir is not None:
            staging = stack.enter_context(staged_folder(annotate_dir))
        with row_file(out, labels, video) as writer:

            def record(result, img: Image.Image | None, annotated_name: str, frame=None):
                rows = face_rows(result, labels, frame)
                counts.update(images=1, no_face=int(not result.faces))
                emotions.update(r["emotion"] for r in rows if r["emotion"])
                writer.write(rows)
                if plot is not None:
                    video_rows.extend(rows)
                if on_rows:
                    on_rows(rows)
                if annotate_dir is not None:
                    save_jpeg(annotate(img, result, labels), staging / annotated_name)

            if video:
                for index, frame, result in iter_video(predictor, target, detect, every, tta):
                    img = Image.fromarray(frame[..., ::-1]) if annotate_dir is not None else None
                    record(result, img, f"{target.stem}_frame{index:07d}.jpg", index)
            else:
                for path in inputs:
                    try:
                        img = read_photo(path.read_bytes(), str(path))
                    except (FerlabError, OSError) as e:
                        message = str(e) if isinstance(e, FerlabError) else f"{path}: {e.strerror}"
                        if target.is_file():  # the one input: an error, not a skipped file
                            raise FerlabError(message) from None
                        bad.append(message)
                        continue
                    result = analyze_image(predictor, img, detect, str(path), tta)
                    record(result, img, _annotated_name(path, target))
            summary = summarize(emotions, counts["images"], counts["no_face"], bad)
            if video:
                summary["every"] = every
            if plot is not None:
                summary["plot"] = str(_plot_video(video_rows, labels, target, plot))
            writer.finish(summary)
    return summary
