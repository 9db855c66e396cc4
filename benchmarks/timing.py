"""The timing loops the benchmarks share: a rate over repeated calls and a median latency."""

import time

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
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))
