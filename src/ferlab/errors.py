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
