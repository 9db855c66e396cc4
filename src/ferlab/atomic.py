"""Atomic writes: a reader never sees a half-written file, and a crash leaves the old one."""

import errno
import os
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ferlab.errors import FerlabError

# The package's shipped models: every later user of the install loads them by name, so only
# `ferlab ship` (ferlab.shipping) may write there.
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# The names a package model may have (weights/NAME.pt).
PACKAGE_MODELS = ("default", "fast", "ferplus")
_shipping: ContextVar[bool] = ContextVar("shipping", default=False)


def inside_package_weights(path: Path) -> bool:
    target = Path(path).resolve()
    return target == PACKAGE_WEIGHTS_DIR or PACKAGE_WEIGHTS_DIR in target.parents


def refuse_package_weights(path: Path) -> None:
    """One line for an output aimed at the package's shipped models (outside `ferlab ship`)."""
    if not _shipping.get() and inside_package_weights(path):
        raise FerlabError(
            f"{path}: inside the package's shipped models ({PACKAGE_WEIGHTS_DIR}); only "
            "`ferlab ship RUN --as NAME` writes there"
        )


@contextmanager
def shipping():
    """Within: writes into the package's weights folder are allowed (ferlab.shipping only)."""
    token = _shipping.set(True)
    try:
        yield
    finally:
        _shipping.reset(token)


@contextmanager
def atomic_writer(path: Path, mode: str = "wb"):
    """A file written in pieces (e.g. a stream of rows) that appears whole or not at all."""
    refuse_package_weights(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file owner-only; the result gets what the user's umask allows.
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in FULL:  # the OS names no file: say which one could not be written
            raise FerlabError(disk_full(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(path: Path, left: str = "an older copy is kept") -> str:
    """The one line for a write that ran out of space: the OS's message names no file."""
    return f"{path}: could not be written: no space left on the device ({left})"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
