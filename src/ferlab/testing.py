"""Synthetic FER data and seconds-long training runs, for tests and for the hostile-case
record (reliability/hostile_cases.py): faces a test can build without a dataset on disk.

Nothing in ferlab imports this module; it sits above training, as a test does.
"""

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np

from ferlab.data import EMOTIONS, FaceSet
from ferlab.training import TrainConfig


def synthetic_faces(
    per_class: int = 6, splits=("Training", "PublicTest"), seed: int = 0, noise: int = 40
) -> FaceSet:
    """Faces whose class shows as a bright square at a class-specific place, on noise."""
    rng = np.random.default_rng(seed)
    images, labels, split_names, ids = [], [], [], []
    for split in splits:
        for label in range(len(EMOTIONS)):
            for k in range(per_class):
                img = rng.integers(0, noise, size=(48, 48)).astype(np.int64) + 60
                r, c = divmod(label, 3)
                img[4 + 14 * r : 16 + 14 * r, 4 + 14 * c : 16 + 14 * c] += 120
                images.append(np.clip(img, 0, 255).astype(np.uint8))
                labels.append(label)
                split_names.append(split)
                ids.append(f"{split}/{EMOTIONS[label]}/{k}")
    return FaceSet(
        np.stack(images), np.array(labels), np.array(split_names), np.array(ids), source="synthetic"
    )


PREFIX = {
    "Training": ("train", "Training_"),
    "PublicTest": ("test", "PublicTest_"),
    "PrivateTest": ("test", "PrivateTest_"),
}


def write_tree(faces: FaceSet, root: Path, ext: str = ".png") -> Path:
    for k in range(len(faces)):
        top, prefix = PREFIX[str(faces.splits[k])]
        path = root / top / EMOTIONS[faces.labels[k]] / f"{prefix}{k}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), faces.images[k])
    return root


def zip_tree(root: Path, zip_path: Path, top: str = "fer2013") -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"{top}/{p.relative_to(root).as_posix()}")
    return zip_path


def pixel_text(face: np.ndarray) -> str:
    return " ".join(str(v) for v in face.reshape(-1))


def write_fer2013_csv(faces: FaceSet, path: Path) -> Path:
    buf = io.StringIO()
    buf.write("emotion,pixels,Usage\n")
    for k in range(len(faces)):
        buf.write(f"{faces.labels[k]},{pixel_text(faces.images[k])},{faces.splits[k]}\n")
    path.write_text(buf.getvalue())
    return path


TINY = {"widths": [8, 16, 16, 32], "dropout": 0.0}


def tiny_run(root: Path, per_class: int, seed: int, epochs: int) -> tuple[Path, Path]:
    """(run folder, data folder): a tiny model trained on synthetic faces under root."""
    from ferlab.training import train

    data = write_tree(synthetic_faces(per_class=per_class, seed=seed), root / "data")
    train(tiny_config(data, root / "run", epochs=epochs))
    return root / "run", data


def tiny_config(data, out, **kw) -> TrainConfig:
    """A seconds-long CPU training run of a tiny cnn-baseline; keyword arguments override."""
    base = dict(
        data=str(data),
        out=str(out),
        model="cnn-baseline",
        model_args=TINY,
        epochs=4,
        batch_size=32,
        lr=5e-3,
        precision="fp32",
        augment="none",
        quiet=True,
        val_fraction=0.2,
    )
    return TrainConfig(**(base | kw))
