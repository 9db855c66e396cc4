"""What the benchmarks share: a rate over repeated calls, latencies over repeated calls, and
the record (a .json of the figures beside a .md table that names the command)."""

import json
import time
from pathlib import Path

import numpy as np


def items_per_second(fn, items: int, seconds: float = 3.0, warmup: int = 2) -> float:
    """Items/s of `fn()` (which handles `items` items a call) over repeated calls for about
    `seconds`, after `warmup` untimed calls (allocations, kernel choice, thread start)."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += items
    return n / (time.perf_counter() - start)


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    """Median milliseconds of `fn()` over `repeats` timed calls, after `warmup` untimed ones."""
    return 1000 * float(np.median(seconds_each(fn, repeats, warmup)))


def seconds_each(fn, repeats: int, warmup: int = 0) -> list[float]:
    """Seconds of each of `repeats` timed calls of `fn()`, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


RESULTS = Path(__file__).parent / "results"


def record(name: str, result: dict, lines: list[str]) -> None:
    """benchmarks/results/NAME.json (the figures) and NAME.md (their table, as `lines`)."""
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
