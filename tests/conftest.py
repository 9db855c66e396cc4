import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlab.data import EMOTIONS, FaceSet
from ferlab.training import TrainConfig


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Every test gets its own cache, so cache behaviour is tested, never inherited.
    monkeypatch.setenv("FERLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    # Each model's first ONNX run exports its graph (seconds); the ONNX path has tests of its
    # own, which name the runtime.
    monkeypatch.setenv("FERLAB_RUNTIME", "torch")


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


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int | None = None, isolated: bool = False
) -> subprocess.CompletedProcess:
    """`ferlab ARGS` as a user runs it: exit status, stdout and stderr. In this process (no
    interpreter start-up per call) unless `isolated` or given a `timeout`: a command that may
    hang, or a test of what third-party code prints at import, gets a process of its own."""
    args = [str(a) for a in args]
    if isolated or timeout is not None:
        return subprocess.run(
            [sys.executable, "-m", "ferlab", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout or 300,
            env=os.environ.copy(),
        )
    import contextlib
    import signal

    from ferlab.commands.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    here, handler, argv = os.getcwd(), signal.getsignal(signal.SIGTERM), sys.argv
    try:
        if cwd:
            os.chdir(cwd)
        sys.argv = ["ferlab", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(here)
        signal.signal(signal.SIGTERM, handler)
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def fer_data() -> Path | None:
    value = os.environ.get("FERLAB_DATA")
    return Path(value) if value and Path(value).exists() else None


@pytest.fixture
def faces() -> FaceSet:
    return synthetic_faces()


@pytest.fixture
def tree(tmp_path, faces) -> Path:
    return write_tree(faces, tmp_path / "tree")


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
