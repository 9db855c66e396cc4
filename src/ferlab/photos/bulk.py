"""Many photos, or a long video, on every core: one per-chunk function (`Worker`'s methods) run
in this process, in worker processes, or on Ray actors (ferlab.photos.on_ray), its results
given back in input order whichever way they were computed.

A worker holds its own detector and model session, loaded once; its threads are the cores
divided among the workers, so that N workers do not fight over the cores each would take.
Photos go to workers a chunk at a time (their faces classified in one batch); a video goes in
frame ranges, each worker seeking to its range's first frame.
"""

import math
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ferlab.errors import FerlabError, at_least_one
from ferlab.photos.detect import DEFAULT_DETECTOR

PHOTOS_PER_CHUNK = 8  # a chunk's faces go through the model together
ENGINES = ("local", "ray")
# A range's first frame is found by seeking, which decodes from the keyframe before it: long
# ranges keep that small beside the frames read.
FRAMES_PER_RANGE = 3000


@dataclass(frozen=True)
class Job:
    """What every worker loads: the model, its runtime, the detector and how it searches, TTA,
    and the folder annotated copies go to (None: none)."""

    model: str
    runtime: str | None = None
    detector: str = DEFAULT_DETECTOR
    min_face: int | None = None
    tta: bool = False
    annotate: str | None = None


@dataclass
class PhotoRows:
    """A photo's rows, or why it could not be read."""

    file: str
    rows: list[dict] = field(default_factory=list)
    error: str | None = None


@dataclass
class FrameRange:
    """Each sampled frame of a range as (frame index, its rows or PhotoResult), and `end`: the
    index after the last frame the range read (short of its stop when the video ends first)."""

    frames: list[tuple]
    end: int


class Worker:
    """A job's model and detector, loaded once (per process, or per Ray actor)."""

    def __init__(self, job: Job, threads: int | None = None):
        from ferlab.inference import load_model
        from ferlab.photos.detect import create_detector
        from ferlab.runtime import use_threads

        if threads:
            use_threads(threads)
        self.job = job
        self.predictor = load_model(job.model, runtime=job.runtime)
        if threads:
            use_threads(threads)  # torch, when loading the model brought it
        self.detect = create_detector(job.detector, job.min_face)
        self.labels = self.predictor.classes

    def classes(self) -> list[str]:
        return self.labels

    def photos(self, items: list[tuple[str, str | None]]) -> list[PhotoRows]:
        """(path, annotated copy's name or None) -> each photo's rows, its faces classified
        together."""
        from ferlab.data.images import gray_array
        from ferlab.photos.analyze import classify, detected_crops, face_rows, read_photo

        done, found = [], []
        for path, copy in items:
            try:
                img = read_photo(Path(path).read_bytes(), path)
            except (FerlabError, OSError) as e:
                message = str(e) if isinstance(e, FerlabError) else f"{path}: {e.strerror}"
                done.append(PhotoRows(path, error=message))
                continue
            result = detected_crops(gray_array(img), self.detect, path)
            found.append((result, img if copy else None, copy))  # the image, to draw on
            done.append(PhotoRows(path))
        classify(self.predictor, [r for r, _, _ in found], self.job.tta)
        results = iter(found)
        for photo in done:
            if photo.error is None:
                result, img, copy = next(results)
                photo.rows = face_rows(result, self.labels)
                self._annotate(img, result, copy)
        return done

    def images(self, images: list, bgr: bool = False) -> list:
        """In-memory images (anything `gray_image` reads) -> their PhotoResults, classified."""
        from ferlab.data.images import gray_image
        from ferlab.photos.analyze import classify, detected_crops

        results = [detected_crops(gray_image(image, bgr=bgr), self.detect) for image in images]
        classify(self.predictor, results, self.job.tta)
        return results

    def frames(
        self, path: str, start: int, stop: int | None, every: int, rows: bool = True
    ) -> FrameRange:
        """The rows (`rows` False: the PhotoResult) of every `every`-th frame from `start` up
        to `stop` (None: the end)."""
        from ferlab.photos.analyze import face_rows, video_range

        out = []
        job = self.job
        ranged = video_range(self.predictor, Path(path), self.detect, start, stop, every, job.tta)
        for index, frame, result in ranged:
            if self.job.annotate is not None:
                from PIL import Image

                img = Image.fromarray(frame[..., ::-1])
                self._annotate(img, result, f"{Path(path).stem}_frame{index:07d}.jpg")
            out.append((index, face_rows(result, self.labels, index) if rows else result))
        return FrameRange(out, ranged.end)

    def _annotate(self, img, result, name: str | None) -> None:
        if self.job.annotate is None or name is None:
            return
        from ferlab.photos.draw import annotate, save_jpeg

        save_jpeg(annotate(img, result, self.labels), Path(self.job.annotate) / name)


# A worker process's Worker, made once by the pool's initializer (or why it could not be:
# raised by each task, so that the parent says it in one line).
_WORKER: list = []


def _start(job: Job, threads: int) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the work and says so, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _WORKER.append(Worker(job, threads))
    except Exception as e:  # noqa: BLE001 (any reason, given back to the parent)
        _WORKER.append(e)


def _call(method: str, args: tuple):
    if isinstance(_WORKER[0], Exception):
        raise _WORKER[0]
    return getattr(_WORKER[0], method)(*args)


def check_job(job: Job) -> None:
    """Refuse here, before workers start, what each of them would refuse: a runtime, model,
    detector or smallest face that does not exist."""
    from ferlab.inference import resolve_checkpoint
    from ferlab.photos.detect import check_detector
    from ferlab.runtime import check_runtime

    check_runtime(job.runtime)
    resolve_checkpoint(job.model)
    check_detector(job.detector, job.min_face)


class Engine:
    """Runs Worker methods over argument tuples and gives their results back in order:
    `workers` 1 in this process, more in as many worker processes."""

    photos_per_task = PHOTOS_PER_CHUNK

    def __init__(self, job: Job, workers: int = 1):
        from ferlab.runtime import usable_cores

        at_least_one(workers=workers)
        self.workers = workers
        self.pool = None
        if workers == 1:
            self.worker = Worker(job)
            self.classes = self.worker.labels
            return
        threads = max(1, usable_cores() // workers)
        # spawn, not fork: a forked copy of a process that already runs sessions' thread
        # pools can deadlock.
        self.pool = ProcessPoolExecutor(
            workers, multiprocessing.get_context("spawn"), initializer=_start,
            initargs=(job, threads),
        )  # fmt: skip
        self.classes = next(self.ordered("classes", [()]))

    def ordered(self, method: str, arglists: Iterable[tuple]) -> Iterator:
        if self.pool is None:
            for args in arglists:
                yield getattr(self.worker, method)(*args)
            return
        window = deque()  # tasks in flight: a few per worker, so that none waits for work
        try:
            for args in arglists:
                window.append(self.pool.submit(_call, method, args))
                if len(window) >= 3 * self.workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        except BrokenProcessPool:
            raise FerlabError(
                "a worker process died (out of memory? or, in a Python script, workers started "
                "outside `if __name__ == '__main__':`); rows written so far are kept"
            ) from None
        finally:
            for future in window:
                future.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def engine(job: Job, workers: int = 1, name: str = "local", address: str | None = None):
    """The engine `name` runs the job on: `local` (this process, or `workers` processes) or
    `ray` (`workers` actors on a Ray cluster at `address`; None: a local Ray)."""
    if name not in ENGINES:
        raise FerlabError(f"unknown engine '{name}'; choose one of {', '.join(ENGINES)}")
    if address is not None and name != "ray":
        raise FerlabError("--address is a Ray cluster's: give it with --engine ray")
    if address is not None and job.annotate is not None:
        raise FerlabError(
            "--annotate with --address: the copies would be written on the cluster's nodes; "
            "annotate on this machine (--engine local)"
        )
    if workers > 1 or name == "ray":
        check_job(job)
    if name == "ray":
        from ferlab.photos.on_ray import RayEngine

        return RayEngine(job, workers, address)
    return Engine(job, workers)


def photo_chunks(items: list, per_chunk: int = PHOTOS_PER_CHUNK) -> list[tuple[list]]:
    """Argument tuples of `Worker.photos`: the items a chunk at a time."""
    return [(items[k : k + per_chunk],) for k in range(0, len(items), per_chunk)]


def frame_ranges(
    path: str, start: int, declared: int, every: int, workers: int
) -> list[tuple[str, int, int | None, int]]:
    """Argument tuples of `Worker.frames`: the frames from `start` in ranges (each starting on
    a sampled frame), a few per worker and at most FRAMES_PER_RANGE long, so that the rows
    come back, and can be resumed, as the video goes; the last open-ended (the declared count
    is an estimate for some containers)."""
    if declared <= start:
        return [(path, start, None, every)]
    ranges = max(4 * workers, math.ceil((declared - start) / FRAMES_PER_RANGE))
    step = every * max(1, math.ceil((declared - start) / ranges / every))
    starts = list(range(start, declared, step))
    stops = [*starts[1:], None]
    return [(path, a, b, every) for a, b in zip(starts, stops, strict=True)]


def video_frames(
    runner, path: Path, declared: int, every: int, start: int = 0, rows: bool = True
) -> Iterator[tuple]:
    """(frame index, its rows; `rows` False: its PhotoResult) of every `every`-th frame of the
    video from `start`, in order, its ranges shared among `runner`'s workers; `declared`: the
    frames its header declares (video_frame_count). A video that ends short is refused once
    all its frames are given."""
    from ferlab.photos.analyze import check_video_end

    end = start
    ranges = frame_ranges(str(path), start, declared, every, runner.workers)
    for part in runner.ordered("frames", [(*r, rows) for r in ranges]):
        yield from part.frames
        end = max(end, part.end)
    check_video_end(path, end, declared)
