"""Photos, folders of photos and videos through the photo path, as `ferlab predict` runs them:
rows written as they come, annotated copies staged and moved in whole, a video's timeline."""

from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from PIL import Image

from ferlab.atomic import new_output_dir, new_output_file, overlaps, staged_folder
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
from ferlab.photos.detect import DEFAULT_DETECTOR, create_detector
from ferlab.photos.draw import annotate, save_jpeg
from ferlab.photos.progress import progress_bar
from ferlab.photos.rows import check_rows_path, row_file


def checked_outputs(
    target: Path, rows: Path | None, annotated: Path | None, plot: bool, force: bool
) -> Path | None:
    """Refuse, before any work, outputs `ferlab predict` cannot write: one that is or holds
    its input, a special file, or an existing one without `force`. The timeline figure's
    path when `plot` (beside the rows, a video's only)."""
    figure = None
    if plot:
        if not is_video(target):
            raise FerlabError(f"{target}: --plot draws a video's timeline; this is not a video")
        if rows is None:
            raise FerlabError("--plot writes its figure beside the rows: give --out FILE")
        figure = rows.with_suffix(".png")
        if figure.exists() and not force:
            raise FerlabError(f"{figure}: exists; choose a new --out or use --force")
    for output in (rows, annotated):
        if output is not None and overlaps(output, target):
            raise FerlabError(f"{output}: is (or holds) the input {target}; choose another output")
    for output in (rows, figure):
        if output is not None:
            new_output_file(output, force or output == figure)
    if annotated is not None:
        new_output_dir(annotated, force)
    return figure


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
    detector: str = DEFAULT_DETECTOR,
    every: int = 10,
    on_rows=None,
    plot: Path | None = None,
    tta: bool = False,
    min_face: int | None = None,
    progress: bool = False,
) -> dict:
    """Classify every face in a photo, a folder of photos or a video; returns the summary.
    Unreadable photos are listed in summary['unreadable'], the others still get their rows.
    `plot`: a video's emotion timeline (each emotion's probability over time) to this PNG.
    `tta`: each face's probabilities averaged over flips and crops; `min_face`: the smallest
    face to look for, in pixels (create_detector); `progress`: a bar on stderr."""
    if not target.exists():
        raise FerlabError(f"{target}: no such file or folder")
    video = is_video(target)
    if plot is not None and not video:
        raise FerlabError(f"{target}: --plot draws a video's timeline; this is not a video")
    detect = create_detector(detector, min_face)
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
        # A long job says how far it is; one photo needs no bar.
        shown = progress and (video or len(inputs) > 1)
        total, unit = (None, "frames") if video else (len(inputs), "images")
        advance = stack.enter_context(progress_bar(total, shown, unit))
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
                advance(1)

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
