import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferlab.data import FaceSet
from ferlab.testing import (  # noqa: F401 (tests import them from here)
    TINY,
    pixel_text,
    synthetic_faces,
    tiny_config,
    tiny_run,
    write_fer2013_csv,
    write_tree,
    zip_tree,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Every test gets its own cache, so cache behaviour is tested, never inherited.
    monkeypatch.setenv("FERLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    # Each model's first ONNX run exports its graph (seconds); the ONNX path has tests of its
    # own, which name the runtime.
    monkeypatch.setenv("FERLAB_RUNTIME", "torch")


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
