"""A set of test photos with known face boxes, built from pictures scikit-image ships, so a
detector's recall and speed can be measured anywhere without downloading or committing photos.

Faces: the astronaut's (skimage.data.astronaut) at several sizes, and the 100 faces of
skimage's LFW subset (25x25 crops of different people), pasted onto skimage's scenes; then
rotated and darkened copies of some photos. Needs scikit-image (the test extra).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from ferlab.errors import FerlabError
from ferlab.photos.detect import Box

ASTRONAUT_FACE = Box(177, 67, 93, 93)  # the face in skimage's astronaut picture


@dataclass(frozen=True)
class TestPhoto:
    name: str
    gray: np.ndarray  # (H, W) uint8
    faces: tuple[Box, ...]  # where the faces are


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise FerlabError("the photo set needs scikit-image: pip install scikit-image") from None
    return data


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def _astronaut_patch(face_side: int) -> tuple[np.ndarray, Box]:
    """The astronaut's head and shoulders scaled so her face is `face_side` wide, and the face
    box inside the patch."""
    data = _skimage_data()
    gray = _gray(data.astronaut())
    f = ASTRONAUT_FACE
    x0, y0 = f.x - f.w // 2, max(0, f.y - f.h // 2)
    patch = gray[y0 : f.y + f.h * 2, x0 : f.x + f.w * 3 // 2]
    s = face_side / f.w
    patch = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return patch, Box(f.x - x0, f.y - y0, f.w, f.h).scaled(s)


def _lfw_faces() -> np.ndarray:
    """The LFW subset's 100 faces (the first half of skimage's lfw_subset), (100, 25, 25)."""
    faces = _skimage_data().lfw_subset()[:100]
    return (faces * 255).round().astype(np.uint8)


def _scene(name: str, width: int, height: int) -> np.ndarray:
    data = _skimage_data()
    return cv2.resize(_gray(getattr(data, name)()), (width, height), interpolation=cv2.INTER_AREA)


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape
    canvas[y : y + h, x : x + w] = patch


def _lfw_grid(faces: np.ndarray, side: int, cols: int, rows: int, scene: str, first: int):
    """rows x cols LFW faces, each upscaled so its face is `side` wide with a margin of its
    own edge pixels (the crops are tight), on a scene."""
    cell = side * 2
    canvas = _scene(scene, cols * cell, rows * cell)
    boxes = []
    for k in range(rows * cols):
        face = cv2.resize(faces[(first + k) % len(faces)], (side, side), cv2.INTER_CUBIC)
        pad = side // 4
        face = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        r, c = divmod(k, cols)
        x, y = c * cell + (cell - face.shape[1]) // 2, r * cell + (cell - face.shape[0]) // 2
        _paste(canvas, face, x, y)
        boxes.append(Box(x + pad, y + pad, side, side))
    return canvas, tuple(boxes)


def _rotated(photo: TestPhoto, degrees: float) -> TestPhoto:
    h, w = photo.gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    gray = cv2.warpAffine(photo.gray, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    boxes = []
    for b in photo.faces:  # the box keeps its size around its rotated centre
        cx, cy = m @ np.array([b.x + b.w / 2, b.y + b.h / 2, 1.0])
        box = Box(round(cx - b.w / 2), round(cy - b.h / 2), b.w, b.h)
        if box.x >= 0 and box.y >= 0 and box.x + box.w <= w and box.y + box.h <= h:
            boxes.append(box)  # a face turned out of the frame is not there to be found
    return TestPhoto(f"{photo.name}, rotated {degrees:+g} deg", gray, tuple(boxes))


def _darkened(photo: TestPhoto, gain: float) -> TestPhoto:
    gray = np.clip(photo.gray.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return TestPhoto(f"{photo.name}, darkened x{gain:g}", gray, photo.faces)


def photo_set() -> list[TestPhoto]:
    """The test photos: 1 to 12 faces each, faces 32 to 280 px wide, 256 to 1280 px photos."""
    data = _skimage_data()
    astronaut = _gray(data.astronaut())
    photos = [TestPhoto("astronaut 512x512", astronaut, (ASTRONAUT_FACE,))]
    for size in (256, 1024):
        s = size / 512
        photos.append(
            TestPhoto(
                f"astronaut {size}x{size}",
                cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_AREA),
                (ASTRONAUT_FACE.scaled(s),),
            )
        )
    # The astronaut at four sizes in one wide photo of a scene.
    canvas, boxes, x = _scene("coffee", 1280, 640), [], 20
    for side in (40, 64, 110, 180):
        patch, face = _astronaut_patch(side)
        y = 40 + (side * 7) % 200
        _paste(canvas, patch, x, y)
        boxes.append(Box(face.x + x, face.y + y, face.w, face.h))
        x += patch.shape[1] + 30
    photos.append(TestPhoto("astronaut at 40-180 px on a scene, 1280x640", canvas, tuple(boxes)))
    faces = _lfw_faces()
    grids = (  # (face side, cols, rows, scene)
        (32, 6, 2, "brick"),
        (48, 5, 2, "grass"),
        (64, 4, 3, "camera"),
        (96, 4, 2, "gravel"),
    )
    first = 0
    for side, cols, rows, scene in grids:
        canvas, boxes = _lfw_grid(faces, side, cols, rows, scene, first)
        photos.append(TestPhoto(f"{cols * rows} LFW faces at {side} px on {scene}", canvas, boxes))
        first += cols * rows
    for base in (photos[0], photos[3], photos[6]):
        photos += [_rotated(base, 12), _rotated(base, -20), _darkened(base, 0.35)]
    # The astronaut beside her mirror image (benchmarks/vs_fer.py's 2-face photo): a permissive
    # search found two false faces in it that no other photo here showed.
    f = ASTRONAUT_FACE
    mirrored = Box(2 * astronaut.shape[1] - f.x - f.w, f.y, f.w, f.h)
    photos.append(
        TestPhoto("astronaut and her mirror image, 1024x512",
                  np.hstack([astronaut, astronaut[:, ::-1]]), (f, mirrored))
    )  # fmt: skip
    return photos


def faces_on_canvas(faces: np.ndarray) -> tuple[np.ndarray, tuple[Box, ...]]:
    """8 tight (48, 48) face crops (e.g. FER2013's) enlarged to 144 px and pasted on a gray
    400x1400 canvas, in two staggered rows; the canvas and the faces' boxes. Dataset faces
    cannot go into the photo set, so tests and benchmarks that have the data build this."""
    if len(faces) != 8:
        raise FerlabError(f"faces_on_canvas: 8 faces, not {len(faces)}")
    canvas = np.full((400, 1400), 128, np.uint8)
    boxes = tuple(Box(40 + 170 * i, 40 + 130 * (i % 2), 144, 144) for i in range(8))
    for face, b in zip(faces, boxes, strict=True):
        canvas[b.y : b.y + b.h, b.x : b.x + b.w] = cv2.resize(face, (b.w, b.h))  # bilinear
    return canvas, boxes


def matched(found: list[Box], truth: tuple[Box, ...], min_iou: float = 0.3) -> int:
    """How many true faces have a detection overlapping them (each detection used once)."""
    used, hits = set(), 0
    for t in truth:
        best, best_iou = None, min_iou
        for i, f in enumerate(found):
            if i not in used and iou(f, t) >= best_iou:
                best, best_iou = i, iou(f, t)
        if best is not None:
            used.add(best)
            hits += 1
    return hits


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.w * a.h + b.w * b.h - inter)
