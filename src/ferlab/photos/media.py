"""Photos, folders of photos and videos through the photo path, as `ferlab predict` runs them:
rows written as they come, annotated copies staged and moved in whole, a video's timeline."""

import math
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from ferlab.atomic import new_output_dir, new_output_file, overlaps, staged_folder
from ferlab.errors import FerlabError
from ferlab.photos.analyze import (
    check_every,
    emotion_timeline,
    image_inputs,
    is_video,
    summarize,
    video_fps,
    video_frame_count,
)
from ferlab.photos.bulk import Job, engine, photo_chunks, video_frames
from ferlab.photos.progress import progress_bar
from ferlab.photos.rows import (
    Resumed,
    check_resumable,
    check_rows_path,
    partial_path,
    resumed_rows,
    row_file,
)


def checked_outputs(
    target: Path,
    rows: Path | None,
    annotated: Path | None,
    plot: bool,
    force: bool,
    resume: bool = False,
) -> Path | None:
    """Refuse, before any work, outputs `ferlab predict` cannot write: one that is or holds
    its input, a special file, or an existing one without `force` (rows to be resumed
    excepted). The timeline figure's path when `plot` (beside the rows, a video's only)."""
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
    check_resumable(rows, resume, force)
    if resume and annotated is not None:
        raise FerlabError(
            "--resume continues rows; annotated copies are made whole: drop --annotate"
        )
    for output in (rows, figure):
        if output is not None and not (resume and output == rows):
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
    job: Job,
    target: Path,
    out: Path | None = None,
    annotate_dir: Path | None = None,
    every: int = 10,
    on_rows=None,
    plot: Path | None = None,
    progress: bool = False,
    workers: int = 1,
    resume: bool = False,
    engine_name: str = "local",
    address: str | None = None,
) -> dict:
    """Classify every face in a photo, a folder of photos or a video as `job` says; returns the
    summary. Unreadable photos are listed in summary['unreadable'], the others still get their
    rows, written to `out` in input order as they come. `plot`: a video's emotion timeline
    (each emotion's probability over time) to this PNG; `progress`: a bar on stderr.
    `workers`: processes (or Ray actors, `engine_name` "ray" at `address`) sharing the work;
    `resume`: continue the rows of an unfinished run in out's FILE.partial."""
    if not target.exists():
        raise FerlabError(f"{target}: no such file or folder")
    video = is_video(target)
    if plot is not None and not video:
        raise FerlabError(f"{target}: --plot draws a video's timeline; this is not a video")
    inputs = None if video else image_inputs(target)  # fails early on an empty folder
    check_rows_path(out)
    if video:
        check_every(every)
        declared = video_frame_count(target)  # and a video that cannot be opened is refused
    with ExitStack() as stack:
        # Annotated copies gather in a hidden folder beside the destination and move there
        # when all are written: an interrupted or failed run leaves no half set behind.
        if annotate_dir is not None:
            job = replace(job, annotate=str(stack.enter_context(staged_folder(annotate_dir))))
        runner = stack.enter_context(engine(job, workers, engine_name, address))
        labels = runner.classes
        resumed = resumed_rows(out, labels, video) if resume else Resumed()
        writer = stack.enter_context(row_file(out, labels, video, resume))
        tally = Tally()
        tally.add(resumed.rows, video)
        timeline = list(resumed.rows) if plot is not None else []
        # A long job says how far it is; one photo needs no bar.
        shown = progress and (video or len(inputs) > 1)
        total = math.ceil(declared / every) if video else len(inputs)
        advance = stack.enter_context(
            progress_bar(total or None, shown, "frames" if video else "images")
        )
        advance(len(resumed.done))

        def record(rows: list[dict]) -> None:
            tally.add(rows, video)
            writer.write(rows)
            timeline.extend(rows if plot is not None else ())
            if on_rows:
                on_rows(rows)
            advance(1)

        if video:
            start = resumed_frame(resumed, every, out)
            for _, rows in video_frames(runner, target, declared, every, start):
                record(rows)
        else:
            items = photo_items(inputs, target, resumed, out, annotate_dir is not None)
            for chunk in runner.ordered("photos", photo_chunks(items, runner.photos_per_task)):
                for photo in chunk:
                    if photo.error is None:
                        record(photo.rows)
                    elif target.is_file():  # the one input: an error, not a skipped file
                        raise FerlabError(photo.error)
                    else:
                        tally.bad.append(photo.error)
                        advance(1)
        summary = summarize(tally.emotions, tally.images, tally.no_face, tally.bad)
        if video:
            summary["every"] = every
        if plot is not None:
            summary["plot"] = str(_plot_video(timeline, labels, target, plot))
        writer.finish(summary)
    return summary


class Tally:
    """Images, images without a face, emotions and unreadable files of a run so far."""

    def __init__(self):
        self.emotions, self.images, self.no_face, self.bad = Counter(), 0, 0, []
        self._last = None

    def add(self, rows: list[dict], video: bool) -> None:
        for row in rows:
            key = row["frame"] if video else row["file"]
            if key != self._last:  # an input's rows come together
                self.images += 1
                self.no_face += row["emotion"] is None
                self._last = key
            if row["emotion"]:
                self.emotions[row["emotion"]] += 1


def photo_items(inputs: list[Path], target: Path, resumed: Resumed, out, annotate: bool) -> list:
    """(path, annotated copy's name or None) of the photos still to do."""
    names = {str(p) for p in inputs}
    if resumed.done - names:
        raise FerlabError(
            f"{partial_path(out)}: holds rows of files that are not inputs of this run (was it "
            "written for another folder, or the same one named otherwise?); use --force to "
            "start again"
        )
    return [
        (str(p), _annotated_name(p, target) if annotate else None)
        for p in inputs
        if str(p) not in resumed.done
    ]


def resumed_frame(resumed: Resumed, every: int, out) -> int:
    """The frame a resumed video's rows continue from."""
    start = max(resumed.done) + every if resumed.done else 0
    if sorted(resumed.done) != list(range(0, start, every)):
        raise FerlabError(
            f"{partial_path(out)}: its frames are not one in {every} from the first (another "
            "--every, or another video?); use --force to start again"
        )
    return start
