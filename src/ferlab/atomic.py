"""Atomic writes: a reader never sees a half-written file, and a crash leaves the old one."""

import errno
import os
import shutil
import stat
import tempfile
import threading
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
# Set by the command line's SIGTERM handler. The KeyboardInterrupt it raises can land inside a
# library's bare `except:` and be lost; a write checks this before it makes its result visible.
_stop_requested = threading.Event()


def request_stop(asked: bool = True) -> None:
    """A stop signal came (asked=False: a new command starts, none has)."""
    if asked:
        _stop_requested.set()
    else:
        _stop_requested.clear()


def _stop_if_requested() -> None:
    if _stop_requested.is_set():
        raise KeyboardInterrupt


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


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special_file(path: Path) -> None:
    """One line for an output path that exists and is not a regular file: renaming over it
    would replace a device node, FIFO or socket (as root, /dev/null itself), --force or not."""
    try:
        mode = os.stat(path).st_mode  # through a link: what would be written is its target
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise FerlabError(f"{path}: cannot be written ({e.strerror})") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise FerlabError(f"{path}: exists and is {kind}; ferlab writes only regular files there")


@contextmanager
def atomic_writer(path: Path, mode: str = "wb"):
    """A file written in pieces (e.g. a stream of rows) that appears whole or not at all."""
    refuse_package_weights(path)
    refuse_special_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file owner-only; the result gets what the user's umask allows.
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f
        refuse_special_file(path)  # again: it may have appeared while the file was written
        _stop_if_requested()
        os.replace(tmp, path)
    except FerlabError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in FULL:  # the OS names no file: say which one could not be written
            raise FerlabError(disk_full(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(dest: Path):
    """A set of files (an evaluation, a figure set) written into a hidden folder beside `dest`
    and moved in once all are written: an interrupted command leaves nothing in `dest`, so
    its rerun is not refused as writing into a non-empty folder. Into an existing `dest`
    (--force) the files move one by one, replacing those of the same name."""
    dest = Path(dest)
    refuse_package_weights(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial"))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's is owner-only; the result not
        yield staging
        _stop_if_requested()
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        if not dest.exists():
            staging.rename(dest)
            return
        for f in sorted(staging.iterdir()):
            target = dest / f.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(f, target)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
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


@contextmanager
def output_folder(path: Path | None, force: bool):
    """The folder a command writes its set of files into (None: no --out), checked as
    `new_output_dir` and written as `staged_folder` (all of it, or nothing): yields the
    staging folder to write into."""
    if path is None:
        yield None
        return
    new_output_dir(path, force)
    with staged_folder(path) as staging:
        yield staging


def new_output_dir(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise FerlabError(f"{path}: exists and is not a folder; choose a new folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise FerlabError(f"{path}: exists and is not empty; choose a new folder or use --force")


def overlaps(output: Path, target: Path) -> bool:
    """Whether writing `output` (with --force) would replace `target` or anything in it."""
    out_, src = output.resolve(), target.resolve()
    return out_ == src or src in out_.parents or out_ in src.parents


def new_output_file(path: Path, force: bool) -> None:
    """Refuse to write `path` over a special file ever, or over an existing file unless
    `force`: before any work starts."""
    refuse_special_file(path)
    if Path(path).exists() and not force:
        raise FerlabError(f"{path}: exists; use --force to replace it")
