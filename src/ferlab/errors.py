import csv
import zipfile
import zlib


class FerlabError(Exception):
    """A problem with the user's input or files: the CLI prints it as one line and exits 2."""


# What reading hostile input or writing to an unusable place raises, when no reader turned it
# into a FerlabError with more context first: caught by kind, so cases nobody listed are
# covered too.
BOUNDARY_ERRORS = (
    OSError,  # missing, unreadable or read-only paths, full disks, damaged files
    zipfile.BadZipFile,
    zlib.error,
    csv.Error,
    UnicodeError,
    EOFError,
)


def boundary_message(e: BaseException) -> str:
    """One of BOUNDARY_ERRORS as one line: the file it names and what went wrong."""
    where = getattr(e, "filename", None)
    what = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return f"{where}: {what}" if where else f"{what} ({type(e).__name__})"


# What each optional part of ferlab needs, by the module a missing one names: the core install
# (ONNX Runtime) has none of them.
EXTRAS = {
    "torch": "train",
    "lightning": "train",
    "torchmetrics": "train",
    "kornia": "train",
    "tensorboard": "train",
    "captum": "explain",
    "matplotlib": "report",
    "jinja2": "report",
    "markdown_it": "report",
    "gradio": "serve",
    "pandas": "tables",
    "ray": "ray",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "core",
}


def missing_extra(e: ModuleNotFoundError) -> str:
    """One line for a missing optional module: which extra brings it and how to install it
    from a clone (ferlab is not published on a package index)."""
    top = (e.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return f"a module ferlab needs is not installed ({top or e})"
    if extra == "core":
        return f"{top} is missing from this install: pip install -e . (from ferlab's clone)"
    pin = " torch==2.13.0" if extra == "train" else ""
    return (
        f"this needs the {extra} extra ({top} is not installed): pip install -e '.[{extra}]'{pin} "
        "(from ferlab's clone)"
    )


def at_least_one(**counts: int) -> None:
    """One line for a count option below 1 (--per-class 0 drew no face; --steps -5 ran none)."""
    for name, value in counts.items():
        if value < 1:
            raise FerlabError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
