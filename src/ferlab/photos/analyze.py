"""Emotions of the faces in ordinary photos and videos: detect, crop, classify in one batch;
each result as rows (`face_rows`; files of them: ferlab.photos.rows, drawn: ferlab.photos.draw).

An input that already is a 48x48 face is classified as it is, without detection. An image
without a face is a result (no rows of faces), not an error.
"""

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ferlab.data.images import MAX_PIXELS, gray_array, open_image
from ferlab.data.readers import image_files
from ferlab.errors import FerlabError, at_least_one
from ferlab.inference import Predictor
from ferlab.photos.detect import Box, Detector, aligned_face

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class Face:
    box: Box
    probs: np.ndarray  # (classes,)
    crop: np.ndarray  # (48, 48) uint8, cut from the photo (aligned), as read
    seen: np.ndarray  # (48, 48) uint8, the crop as the model sees it (its preprocessing)


@dataclass
class PhotoResult:
    name: str
    width: int
    height: int
    direct: bool  # a 48x48 face, classified without detection
    faces: list[Face] = field(default_factory=list)
    # Found and cut out, before classification (`detected_crops`; `classify` fills `faces`).
    boxes: list[Box] = field(default_factory=list, repr=False)
    crops: list[np.ndarray] = field(default_factory=list, repr=False)


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def read_photo(data: bytes, name: str) -> Image.Image:
    """Decoded, upright (EXIF) image; FerlabError naming the file for anything else."""
    return open_image(data, name, max_pixels=MAX_PIXELS)


def detected_crops(gray: np.ndarray, detector: Detector, name: str = "") -> PhotoResult:
    """The faces of an (H, W) uint8 image found and cut out as the model reads them (aligned
    48x48 crops), not yet classified; a 48x48 image is one face as it is."""
    h, w = gray.shape
    direct = gray.shape == (48, 48)
    boxes = [Box(0, 0, 48, 48)] if direct else detector(gray)
    crops = [gray if direct else aligned_face(gray, b) for b in boxes]
    return PhotoResult(name, w, h, direct, boxes=boxes, crops=crops)


def classify(predictor: Predictor, results: list[PhotoResult], tta: bool = False) -> None:
    """Fill each result's `faces` from its crops, the crops of all of them in one batch."""
    crops = [c for r in results for c in r.crops]
    if not crops:
        return
    crops = np.stack(crops)
    probs, seen = predictor.probabilities(crops, tta=tta), predictor.seen_images(crops)
    start = 0
    for r in results:
        end = start + len(r.crops)
        parts = (r.boxes, probs[start:end], crops[start:end], seen[start:end])
        r.faces = [Face(*f) for f in zip(*parts, strict=True)]
        start = end


def analyze_gray(
    predictor: Predictor, gray: np.ndarray, detector: Detector, name: str = "", tta: bool = False
) -> PhotoResult:
    result = detected_crops(gray, detector, name)
    classify(predictor, [result], tta)
    return result


def analyze_image(
    predictor: Predictor, img: Image.Image, detector: Detector, name: str = "", tta: bool = False
):
    return analyze_gray(predictor, gray_array(img), detector, name, tta)


def image_inputs(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise FerlabError(f"{target}: no such file or folder")
    files = sorted(full for _, full in image_files(target))  # linked folders followed
    if not files:
        raise FerlabError(f"{target}: no images found")
    return files


def iter_video(
    predictor: Predictor, path: Path, detector: Detector, every: int = 10, tta: bool = False
) -> Iterator[tuple[int, np.ndarray, PhotoResult]]:
    """(frame index, BGR frame, result) for every `every`-th frame; one frame in memory."""
    check_every(every)
    declared = video_frame_count(path)
    frames = video_range(predictor, path, detector, 0, None, every, tta)
    yield from frames
    check_video_end(path, frames.end, declared)


def check_every(every: int) -> None:
    at_least_one(every=every)


def check_video_end(path: Path, end: int, declared: int) -> None:
    """Refuse a video that gave no frames, or fewer than its header declares (`end`: the index
    after the last frame read)."""
    if end == 0:
        raise FerlabError(f"{path}: not a readable video (no frames)")
    # The header's count is an estimate for some containers: allow it a few percent.
    if declared and end < 0.95 * declared - 1:
        raise FerlabError(
            f"{path}: the video ends after {end} of its {declared} frames (truncated or damaged)"
        )


def video_frame_count(path: Path) -> int:
    """The frames the container's header declares (an estimate for some), 0 if none."""
    cap = opened_video(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


class video_range:  # noqa: N801 (used as the generator it is; `end` is read after it)
    """(frame index, BGR frame, result) for every `every`-th frame from `start` up to `stop`
    (None: the end of the video); after the iteration, `end` is the index after the last
    frame read."""

    def __init__(self, predictor, path: Path, detector, start, stop, every, tta):
        self.args = (predictor, path, detector, start, stop, every, tta)
        self.end = start

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, PhotoResult]]:
        predictor, path, detector, start, stop, every, tta = self.args
        cap = opened_video(path)
        try:
            index = seek(cap, path, start)
            while stop is None or index < stop:
                if index % every == 0:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                    name = f"{path}#{index}"
                    yield index, frame, analyze_gray(predictor, gray, detector, name, tta)
                elif not cap.grab():  # skipped frames are not decoded into images
                    break
                index += 1
                self.end = index
        finally:
            cap.release()


def seek(cap: cv2.VideoCapture, path: Path, start: int) -> int:
    """Put `cap` at frame `start`; the frame it is at (short of `start` if the video ends
    first). A container OpenCV cannot seek in is read up to there."""
    if start == 0:
        return 0
    if cap.set(cv2.CAP_PROP_POS_FRAMES, start) and cap.get(cv2.CAP_PROP_POS_FRAMES) == start:
        return start
    cap.open(str(path))
    index = 0
    while index < start and cap.grab():
        index += 1
    return index


def opened_video(path: Path) -> cv2.VideoCapture:
    cap = open_video(path)
    if not cap.isOpened():
        raise FerlabError(f"{path}: not a readable video")
    return cap


def open_video(path: Path) -> cv2.VideoCapture:
    # FFmpeg's own complaints ("moov atom not found") would precede ferlab's one line; OpenCV
    # reads this when it opens a file, and a user's own setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    return cv2.VideoCapture(str(path))


def video_fps(path: Path) -> float | None:
    """Frames per second the container declares; None when it declares none."""
    cap = open_video(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    finally:
        cap.release()
    return fps if 0 < fps < 1000 else None


def emotion_timeline(rows: list[dict], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, (frames, classes) probabilities) of a video's rows: the largest face of
    each sampled frame (the person the video is about), NaN where a frame has no face."""
    frames = sorted({r["frame"] for r in rows})
    at = {f: i for i, f in enumerate(frames)}
    probs = np.full((len(frames), len(labels)), np.nan)
    area = np.zeros(len(frames))
    for r in rows:
        if r["emotion"] is None:
            continue
        i, size = at[r["frame"]], r["box"][2] * r["box"][3]
        if size > area[i]:
            area[i] = size
            probs[i] = [r["probabilities"][e] for e in labels]
    return np.array(frames, dtype=int), probs


def face_rows(result: PhotoResult, labels: list[str], frame: int | None = None) -> list[dict]:
    """One row per face; one row with empty emotion when the image has none."""
    base = {"file": result.name} if frame is None else {"file": result.name, "frame": frame}
    if not result.faces:
        return [base | {"face": None, "box": None, "emotion": None, "confidence": None}]
    rows = []
    for i, f in enumerate(result.faces):
        k = int(f.probs.argmax())
        rows.append(
            base
            | {
                "face": i,
                "box": f.box.as_list(),
                "emotion": labels[k],
                "confidence": round(float(f.probs[k]), 4),
                "probabilities": {
                    e: round(float(p), 4) for e, p in zip(labels, f.probs, strict=True)
                },
                "detected": not result.direct,
                # A CNN detector's confidence and 5 landmarks (eyes, nose, mouth corners), the
                # eyes being what the crop was levelled on; None from a cascade.
                "score": None if f.box.score is None else round(f.box.score, 4),
                "landmarks": None
                if f.box.landmarks is None
                else [[round(x, 1), round(y, 1)] for x, y in f.box.landmarks],
            }
        )
    return rows


def summarize(results_faces: Counter, images: int, no_face: int, bad: list[str]) -> dict:
    return {
        "images": images,
        "faces": sum(results_faces.values()),
        "images_without_faces": no_face,
        "emotions": dict(results_faces.most_common()),
        "unreadable": bad,
    }
