"""A long run through one proxy, with memory sampled all along: does anything grow?

`python -m bench soak [-n REQUESTS] [--calls N] [--plot FILE] [--bus nats|rabbitmq]` starts one
server process beside the Asterisk sandbox and, in this process, two clients on the bus: one sends
`asterisk.info()` requests, 16 in flight, until `-n` have been answered (1,000,000 by default); the
other is an instance in `listen()` that takes calls, answers and hangs up each one, and follows it
to its StasisEnd, while calls are originated through the proxy, 8 at a time, until `--calls` have
ended (20,000 by default). Every 10 s it samples the resident memory of the server, of this process
(the clients) and of Asterisk.

Memory must end flat: the report gives each process's RSS at a tenth of the run, at half time
and at the end, and over the second half (Python's allocator and the caches have settled by
then) the growth and a least-squares slope in MB per hour. On NATS (the default) the bus is a
server of its own, so that nothing else on the machine adds to the clients' tables; on RabbitMQ
it is the machine's broker. With `--plot` (and matplotlib
installed) it also draws the curves to a PNG file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import ari_proxy
from ari_proxy.testing import Instance, NatsCluster, ensure_rabbitmq
from ari_proxy.testing.chaos import rss

from ._servers import OurServer
from ._stats import table

APP = "bench-soak"
SAMPLE_EVERY = 10.0
REQUESTS_IN_FLIGHT = 16
CALLS_IN_FLIGHT = 8


def _rss(pid: int) -> float:
    """Resident memory of `pid`, in MB."""
    return rss(pid) / 2**20


@dataclass
class Soak:
    requests: int
    calls: int
    issued: int = 0
    answered: int = 0
    failed: int = 0
    ended: int = 0
    dropped: int = 0
    samples: list[tuple[float, float, float, float, int, int]] = field(default_factory=list)
    """(seconds, server MB, clients MB, Asterisk MB, requests answered, calls ended)."""

    async def ask(self, client: ari_proxy.Client, node: str) -> None:
        while self.issued < self.requests:
            self.issued += 1
            try:
                await client.asterisk.info(node=node)
            except ari_proxy.AriProxyError:
                self.failed += 1
            else:
                self.answered += 1

    async def place(self, client: ari_proxy.Client, node: str, placed: asyncio.Semaphore) -> None:
        for _ in range(self.calls):
            await placed.acquire()  # released when the call has ended
            try:
                await client.channels.originate("Local/wait@default", app=APP, node=node)
            except ari_proxy.AriProxyError:
                self.dropped += 1
                placed.release()

    async def take(self, client: ari_proxy.Client, placed: asyncio.Semaphore) -> None:
        async def one(call: ari_proxy.Call) -> None:
            try:
                async with call:
                    await call.channel.answer()
                    await call.channel.hangup()
                    async for event in call.events:
                        if ari_proxy.event_type(event) == "StasisEnd":
                            break
                self.ended += 1
            except ari_proxy.AriProxyError:
                self.dropped += 1
            finally:
                placed.release()

        async with asyncio.TaskGroup() as group, client.listen() as incoming:
            while self.ended + self.dropped < self.calls:
                # Waits a second at a time: after the last call, no call comes to end the wait.
                with contextlib.suppress(TimeoutError):
                    group.create_task(one(await incoming.next(timeout=1.0)))

    def record(self, pids: tuple[int, int, int], started: float) -> None:
        server, clients, asterisk = (_rss(pid) for pid in pids)
        now = time.monotonic() - started
        self.samples.append((now, server, clients, asterisk, self.answered, self.ended))

    async def sample(self, pids: tuple[int, int, int], started: float) -> None:
        while True:
            self.record(pids, started)
            await asyncio.sleep(SAMPLE_EVERY)  # pacing: the sampling period


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return (
        3600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    )


def _plot(soak: Soak, path: Path) -> None:
    import matplotlib  # only for --plot

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t = [s[0] / 60 for s in soak.samples]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for index, name in ((1, "server"), (2, "clients"), (3, "Asterisk")):
        ax.plot(t, [s[index] for s in soak.samples], label=name)
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Soak: {soak.answered:,} requests and {soak.ended:,} calls through one proxy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


async def run(
    inst: Instance,
    *,
    requests: int = 1_000_000,
    calls: int = 20_000,
    plot: Path | None = None,
    bus: str = "nats",
) -> str:
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        # Said before the run, not after it: a long run must not end without its report.
        raise SystemExit("soak --plot needs matplotlib: .venv/bin/pip install matplotlib")
    if bus == "rabbitmq":
        title = "RabbitMQ (the machine's broker)"
        return (
            title
            + "\n\n"
            + await _run(inst, ensure_rabbitmq(), requests=requests, calls=calls, plot=plot)
        )
    with NatsCluster(1) as nats:
        return await _run(inst, nats.urls[0], requests=requests, calls=calls, plot=plot)


async def _run(inst: Instance, url: str, *, requests: int, calls: int, plot: Path | None) -> str:
    server = OurServer(inst, url, APP).start()
    soak = Soak(requests, calls)
    try:
        await server.ready(timeout=30)
        assert server.process is not None
        started = time.monotonic()
        async with (
            ari_proxy.connect(url, application=APP) as asker,
            ari_proxy.connect(url, application=APP) as taker,
        ):
            node = inst.entity_id
            placed = asyncio.Semaphore(CALLS_IN_FLIGHT)
            pids = (server.process.pid, os.getpid(), inst.pid)
            sampler = asyncio.create_task(soak.sample(pids, started))
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(soak.take(taker, placed))
                    group.create_task(soak.place(asker, node, placed))
                    for _ in range(REQUESTS_IN_FLIGHT):
                        group.create_task(soak.ask(asker, node))
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            soak.record(pids, started)
    finally:
        server.stop()
    elapsed = soak.samples[-1][0] if soak.samples else 0.0
    if plot is not None:
        _plot(soak, plot)
    return report(soak, elapsed)


def report(soak: Soak, elapsed: float) -> str:
    end = soak.samples[-1][0]
    warm = next(s for s in soak.samples if s[0] >= end / 10)
    half = [s for s in soak.samples if s[0] >= end / 2]
    rows = []
    for index, name in ((1, "server"), (2, "clients"), (3, "Asterisk")):
        rows.append(
            [
                name,
                f"{warm[index]:.1f}",
                f"{half[0][index]:.1f}",
                f"{soak.samples[-1][index]:.1f}",
                f"{max(s[index] for s in soak.samples):.1f}",
                f"{soak.samples[-1][index] - half[0][index]:+.1f}",
                f"{_slope([(s[0], s[index]) for s in half]):+.2f}",
            ]
        )
    title = (
        f"Soak: {soak.answered:,} requests answered ({soak.failed:,} failed) and {soak.ended:,} "
        f"calls ended ({soak.dropped:,} dropped) in {elapsed / 60:.1f} min; RSS every "
        f"{SAMPLE_EVERY:g} s"
    )
    header = [
        "process",
        "MB at 1/10",
        "MB at 1/2",
        "MB at the end",
        "MB peak",
        "2nd half MB",
        "2nd half MB/h",
    ]
    return table(title, rows, header)
