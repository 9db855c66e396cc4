"""ferlab from Python: the emotions of the faces in photos and videos, in a few lines.

    import ferlab

    recognizer = ferlab.Recognizer()  # the shipped default model, faces found by YuNet
    for face in recognizer.analyze("photo.jpg"):
        print(face.emotion, f"{face.confidence:.0%}", face.box)

An image is a path, the bytes of an image file, a PIL image, or a numpy array: (H, W) gray or
(H, W, 3) RGB, uint8; pass `bgr=True` for OpenCV's frames. A 48x48 image is taken as a face
crop and classified as it is; any other is searched for faces first. Everything the commands
do with photos goes through here: `ferlab predict`, `ferlab evaluate --detector`, `ferlab
explain --image` and the web demo.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlab.data.images import gray_image
from ferlab.errors import FerlabError
from ferlab.photos.analyze import Face as DetectedFace
from ferlab.photos.analyze import PhotoResult, classify, detected_crops
from ferlab.photos.progress import progress_bar

# The columns of `ferlab predict --out rows.csv`, in its order (landmarks after these).
TABLE_COLUMNS = ("file", "face", "x", "y", "w", "h", "emotion", "confidence")


@dataclass(frozen=True)
class Face:
    """One face in an image and the model's answer for it."""

    index: int  # its number in the image, from 0 (as in the rows `ferlab predict` writes)
    box: tuple[int, int, int, int]  # x, y, width, height in the image's pixels
    emotion: str  # the most probable of the model's classes
    confidence: float  # its probability
    probabilities: dict[str, float]  # every class of the model, in the model's order
    score: float | None = None  # the detector's confidence (None: a cascade, or a face crop)
    # (x, y) of the right eye, left eye, nose tip, right and left mouth corners (YuNet's)
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.probabilities)

    def row(self, file: str = "") -> dict:
        """This face as one row of `ferlab predict`'s CSV (probabilities as p_<emotion>)."""
        x, y, w, h = self.box
        row = {"file": file, "face": self.index, "x": x, "y": y, "w": w, "h": h}
        row |= {"emotion": self.emotion, "confidence": round(self.confidence, 4)}
        row |= {f"p_{e}": round(p, 4) for e, p in self.probabilities.items()}
        row["score"] = None if self.score is None else round(self.score, 4)
        return row


@dataclass(frozen=True)
class Frame:
    """A video frame that was analysed: its index, its time, its faces."""

    index: int
    seconds: float | None  # None when the video declares no frame rate
    faces: list[Face]


class Recognizer:
    """A model and a face detector, loaded once: `analyze` an image, `analyze_many` images
    (their faces batched through the model), `analyze_video` a video, `explain` an image's
    faces.

    model: a shipped model (`default`, `fast`, `ferplus`), a run folder, a checkpoint or an
    .onnx file; detector: a registered detector (`yunet`, `haar`, `haar-fast`, `whole`); tta:
    average each face over flips and crops; runtime: `onnx` or `torch` (default: ONNX Runtime
    where installed); min_face: find faces down to this width in pixels (the default finds
    them from 48 px in any photo; lower costs time on large photos)."""

    def __init__(
        self,
        model: str | Path = "default",
        detector: str = "yunet",
        tta: bool = False,
        runtime: str | None = None,
        min_face: int | None = None,
    ):
        from ferlab.inference import load_model
        from ferlab.photos.detect import create_detector

        self.model_ref, self.tta, self.runtime, self.min_face = model, tta, runtime, min_face
        self.predictor = load_model(model, runtime=runtime)
        self.detect = create_detector(detector, min_face)
        self.detector = detector

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    def analyze(self, image, *, bgr: bool = False) -> list[Face]:
        """The faces of one image (see the module's note for what an image may be)."""
        return self._faces(self._analyzed(image, bgr))

    def _analyzed(self, image, bgr: bool) -> PhotoResult:
        result = detected_crops(gray_image(image, bgr=bgr), self.detect)
        classify(self.predictor, [result], self.tta)
        return result

    def analyze_many(
        self,
        images: Iterable,
        *,
        batch_size: int = 64,
        bgr: bool = False,
        progress: bool = False,
        workers: int = 1,
    ) -> list[list[Face]]:
        """The faces of each image, in order; the faces of several images go through the
        model together, `batch_size` faces at a time. `progress`: a bar on stderr. `workers`:
        processes sharing the work, each with its own detector and model (they start in a
        second or two; paths are read by the workers, arrays are sent to them)."""
        if batch_size < 1:
            raise FerlabError(f"batch_size must be at least 1, not {batch_size}")
        images = list(images)
        if workers != 1:
            return self._analyzed_by_workers(images, bgr, progress, workers)
        results: list[list[Face]] = []
        pending: list[PhotoResult] = []
        with progress_bar(len(images), progress) as advance:
            for image in images:
                gray = gray_image(image, bgr=bgr)
                pending.append(detected_crops(gray, self.detect))
                if sum(len(r.boxes) for r in pending) >= batch_size:
                    results += self._classified(pending)
                    advance(len(pending))
                    pending = []
            results += self._classified(pending)
            advance(len(pending))
        return results

    def analyze_video(
        self, path: str | Path, *, every: int = 10, workers: int = 1
    ) -> Iterator[Frame]:
        """Every `every`-th frame of the video at `path` with its faces, in order; `workers`
        processes read ranges of its frames side by side."""
        from ferlab.photos.analyze import iter_video, video_fps

        fps = video_fps(Path(path))
        results = (
            ((index, result) for index, _, result in iter_video(
                self.predictor, Path(path), self.detect, every, self.tta
            ))
            if workers == 1
            else self._video_by_workers(Path(path), every, workers)
        )  # fmt: skip
        for index, result in results:
            seconds = round(index / fps, 3) if fps else None
            yield Frame(index, seconds, self._faces(result))

    def _job(self):
        from ferlab.photos.bulk import Job

        return Job(str(self.model_ref), self.runtime, self.detector, self.min_face, self.tta)

    def _analyzed_by_workers(self, images: list, bgr: bool, progress: bool, workers: int):
        from ferlab.photos.bulk import Engine, photo_chunks

        results = []
        with Engine(self._job(), workers) as runner, progress_bar(len(images), progress) as advance:
            chunks = [(chunk, bgr) for (chunk,) in photo_chunks(images)]
            for done in runner.ordered("images", chunks):
                results += [self._faces(r) for r in done]
                advance(len(done))
        return results

    def _video_by_workers(self, path: Path, every: int, workers: int):
        from ferlab.photos.analyze import check_every, video_frame_count
        from ferlab.photos.bulk import Engine, video_frames

        check_every(every)
        declared = video_frame_count(path)
        with Engine(self._job(), workers) as runner:
            yield from video_frames(runner, path, declared, every, rows=False)

    def explain(self, image, *, method: str | None = None, bgr: bool = False) -> list[dict]:
        """Per face of `image`: the face as the model saw it (48x48 uint8), its saliency map
        for the predicted emotion (48x48 in [0, 1]) and the method that drew it (Grad-CAM,
        or input gradients for a network without conv layers). Needs PyTorch."""
        from ferlab.explain.panels import face_saliency

        result = self._analyzed(image, bgr)
        faces = self._faces(result)
        if not faces:
            return []
        targets = [self.classes.index(f.emotion) for f in faces]
        crops = np.stack(result.crops)
        seen, maps, used = face_saliency(self._torch_predictor(), crops, targets, method)
        return [
            {"face": f, "seen": s, "map": m, "method": used}
            for f, s, m in zip(faces, seen, maps, strict=True)
        ]

    def _torch_predictor(self):
        if self.predictor.model is not None:
            return self.predictor
        from ferlab.inference import load_model

        return load_model(self.model_ref, runtime="torch")

    def _classified(self, pending: list[PhotoResult]) -> list[list[Face]]:
        classify(self.predictor, pending, self.tta)
        return [self._faces(r) for r in pending]

    def _faces(self, result: PhotoResult) -> list[Face]:
        return [face_of(i, f, self.classes) for i, f in enumerate(result.faces)]


def write_row_shards(
    photos: str | Path | Iterable[str | Path],
    out: str | Path,
    *,
    model: str | Path = "default",
    detector: str = "yunet",
    tta: bool = False,
    runtime: str | None = None,
    min_face: int | None = None,
    actors: int = 2,
    address: str | None = None,
    format: str = "parquet",
) -> Path:
    """The rows of every photo (a folder, or paths) as `ferlab predict` makes them, computed
    by `actors` Ray actors (each loading the model once) and written by them as Parquet (or
    CSV) shards into the new folder `out`, in no particular order; unreadable photos get a row
    with `error`. A local Ray without `address`; on a cluster, the photos and `out` must be
    where every node reads and writes. Needs the ray extra."""
    from ferlab.photos.analyze import image_inputs
    from ferlab.photos.bulk import Job
    from ferlab.photos.on_ray import write_shards

    if isinstance(photos, str | Path):
        paths = [str(p) for p in image_inputs(Path(photos))]
    else:
        paths = [str(p) for p in photos]
    job = Job(str(model), runtime, detector, min_face, tta)
    return write_shards(paths, out, job, actors, address, format)


def explain_photo(
    model: str | Path, image, out: Path, method: str | None = None, detector: str = "yunet"
) -> list[Path]:
    """`ferlab explain saliency MODEL --image PHOTO`: each face found in the photo, its
    saliency map for the emotion the model answers and the face with its low-saliency pixels
    off, as one figure (saliency.png), and their numbers (saliency.json), written in `out`."""
    import json

    from ferlab.atomic import write_text_atomic
    from ferlab.explain.saliency import masked_faces
    from ferlab.plots import plot_saliency_panels

    explained = Recognizer(model, detector, runtime="torch").explain(image, method=method)
    if not explained:
        raise FerlabError(f"{image}: no face found ({detector})")
    seen = np.stack([e["seen"] for e in explained])
    maps = np.stack([e["map"] for e in explained])
    used = explained[0]["method"]
    faces = [e["face"] for e in explained]
    titles = [f"face {f.index}: {f.emotion} ({f.confidence:.0%})" for f in faces]
    figure = plot_saliency_panels(
        seen, maps, masked_faces(seen, maps), titles, Path(out) / "saliency.png", used
    )
    rows = [face.row(str(image)) | {"box": list(face.box)} for face in faces]
    record = Path(out) / "saliency.json"
    write_text_atomic(record, json.dumps({"method": used, "faces": rows}, indent=1) + "\n")
    return [figure, record]


def face_of(index: int, face: DetectedFace, classes: list[str]) -> Face:
    probs = {c: float(p) for c, p in zip(classes, face.probs, strict=True)}
    best = max(probs, key=probs.get)
    box = face.box
    return Face(
        index, (box.x, box.y, box.w, box.h), best, probs[best], probs, box.score, box.landmarks
    )


def table(results: Iterable[list[Face]], files: Iterable[str] | None = None) -> list[dict]:
    """One row per face (the columns of `ferlab predict`'s CSV, probabilities as p_<emotion>)
    of `analyze_many`'s results; `files`: a name per image for the `file` column."""
    results = list(results)
    names = [str(f) for f in files] if files is not None else [""] * len(results)
    if len(names) != len(results):
        raise FerlabError(f"{len(names)} file names for {len(results)} images")
    return [face.row(name) for faces, name in zip(results, names, strict=True) for face in faces]


def to_dataframe(results: Iterable[list[Face]], files: Iterable[str] | None = None):
    """`table(results, files)` as a pandas DataFrame (pandas: the `tables` extra)."""
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise FerlabError(
            "to_dataframe needs pandas: pip install -e '.[tables]' (or use ferlab.table)"
        ) from None
    rows = table(results, files)
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else list(TABLE_COLUMNS))


__all__ = [
    "Face", "Frame", "Recognizer", "gray_image", "table", "to_dataframe", "write_row_shards",
]  # fmt: skip
