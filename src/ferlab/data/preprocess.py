"""Face preprocessing shared by training, evaluation and prediction.

The shared FER2013 copy is histogram-equalized and the public download is not; equalizing
every face makes both look alike to a model, and equalizing twice changes a face very little.
"""

from dataclasses import asdict, dataclass

import cv2
import numpy as np

FACE_SIZE = 48


@dataclass(frozen=True)
class Preprocess:
    equalize_hist: bool = True
    size: int = FACE_SIZE

    def apply(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 48, 48) uint8, a new array."""
        if not self.equalize_hist:
            return faces.copy()
        return equalize_hist(faces)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(**{k: d[k] for k in ("equalize_hist", "size") if k in d})


DEFAULT_PREPROCESS = Preprocess()
RAW = Preprocess(equalize_hist=False)


def equalize_hist(faces: np.ndarray) -> np.ndarray:
    """Global histogram equalization of each face (OpenCV's equalizeHist). (N, H, W) uint8."""
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        cv2.equalizeHist(np.ascontiguousarray(face), dst=out[i])
    return out


def to_face_size(gray: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Resize an (H, W) uint8 image to size x size (area averaging when shrinking)."""
    if gray.shape == (size, size):
        return gray
    shrink = gray.shape[0] > size or gray.shape[1] > size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)
