"""Timing helpers: medians and percentiles of repeated runs, and a plain-text table."""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """Latencies of one measured operation, in seconds."""

    name: str
    latencies: Sequence[float]
    wall: float  # seconds for the whole run (throughput = n / wall)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


async def serial(
    name: str, op: Callable[[], Awaitable[object]], n: int, warmup: int = 50
) -> Sample:
    """Run `op` `n` times one after another."""
    for _ in range(warmup):
        await op()
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await op()
        latencies.append(time.perf_counter() - t0)
    return Sample(name, latencies, time.perf_counter() - start)


async def concurrent(
    name: str, op: Callable[[], Awaitable[object]], n: int, in_flight: int = 32, warmup: int = 50
) -> Sample:
    """Run `op` `n` times with `in_flight` running at once."""
    for _ in range(warmup):
        await op()
    latencies: list[float] = []
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return Sample(name, latencies, time.perf_counter() - start)


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) a running process has used so far, over all its threads.

    From each thread's `/proc/PID/task/TID/schedstat` (nanoseconds), not `/proc/PID/stat`
    (clock ticks of 10 ms: too coarse for a phase of a few hundred milliseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return total / 1e9


def own_cpu() -> float:
    """CPU seconds this process has used so far (all threads)."""
    return time.process_time()


def children_cpu() -> float:
    """CPU seconds used by this process's children that have ended and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(title: str, rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [f"### {title}", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"
