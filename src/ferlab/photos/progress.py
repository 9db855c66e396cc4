"""A progress bar for long jobs (folders of photos, videos): count, items/s and time left on
stderr, gone when the job ends; or nothing, for a caller that prints its own rows."""

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOG_EVERY_S = 60.0  # a job logged to a file says how far it is this often


@contextmanager
def progress_bar(total: int | None, shown: bool, unit: str = "images") -> Iterator[Callable]:
    """Yields `advance(n)`; `total` None: a count without a bar's end. A terminal gets a bar;
    a log file, which would keep a bar's redrawn lines, a plain line a minute."""
    if not shown:
        yield lambda n=1: None
        return
    if not sys.stderr.isatty():
        yield progress_lines(total, unit)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(f"[progress.description]{unit}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(unit, total=total, rate="")

        def advance(n: int = 1) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.1f} {unit}/s" if speed else "")

        yield advance


def progress_lines(total: int | None, unit: str, every: float = LOG_EVERY_S) -> Callable:
    """`advance(n)` that writes "ferlab: 1,200 of 4,892 images, 245.0 images/s, 15 s left" to
    stderr at most once every `every` seconds."""
    start = last = time.monotonic()
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last < every or now == start:
            return
        last = now
        rate = done / (now - start)
        of = f" of {total:,}" if total else ""
        left = f", {(total - done) / rate:,.0f} s left" if total and rate else ""
        print(f"ferlab: {done:,}{of} {unit}, {rate:.1f} {unit}/s{left}", file=sys.stderr)

    return advance
