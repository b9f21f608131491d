"""Shared by the benchmarks: run work on N threads released together and time them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_threads(threads: int, work: Callable[[int], None]) -> float:
    """Start ``threads`` threads running work(i), release them at once, return the wall time until all end.
    A benchmark with errors has no figure: the first error is raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed; first: {errors[0]!r}") from errors[0]
    return elapsed
