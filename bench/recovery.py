"""How soon service comes back after a fault, for the Go server and ours, side by side.

`python -m bench recovery [-n ROUNDS]` runs each fault against one server at a time (the Go
server when its binaries are found, and ours, the order swapped every round), with our proxy
client asking `asterisk.info()` of the server's node every 100 ms throughout:

- `nats`: the NATS server (a private one on a free port) stopped for 3 s, then started again;
- `rabbitmq`: the machine's RabbitMQ `rabbitmqctl stop_app` for 3 s, then `start_app`;
- `asterisk`: `core restart now` on the server's Asterisk.

For each it reports the outage (from the first failed request to the first successful one
after it) and the recovery: from the moment the peer is back (NATS accepting connections,
`start_app` done, Asterisk answering `/ari/asterisk/ping`) to the first request answered. The
same client probes both servers, so its own reconnection weighs the same on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import ari_proxy
from ari_proxy.testing import (
    Instance,
    NatsCluster,
    ensure_nats,
    ensure_rabbitmq,
    wait_until,
)

from ._servers import OurServer, Served, asterisk_back, find_goref, rabbitmqctl
from ._stats import table

APP = "bench-recovery"
OUTAGE = 3.0
PERIOD = 0.1


@dataclass
class Probe:
    """A request every `PERIOD` seconds, each with a 1 s deadline; outcomes with their times."""

    client: ari_proxy.Client
    node: str
    answered_at: list[float] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            while not stop.is_set():
                group.create_task(self._one())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PERIOD)  # pacing: the probe's period

    async def _one(self) -> None:
        try:
            await self.client.with_options(timeout=1.0).asterisk.info(node=self.node)
        except ari_proxy.AriProxyError:
            self.failed_at.append(time.monotonic())
        else:
            self.answered_at.append(time.monotonic())

    def outage_and_recovery(self, back_at: float) -> tuple[float, float]:
        """(first failure to the first answer after it, the peer's return to that answer)."""
        first_failure = min(self.failed_at, default=back_at)
        answered = min(t for t in self.answered_at if t > first_failure)
        return answered - first_failure, answered - back_at


@dataclass(frozen=True)
class Peer:
    """What a fault breaks: the bus URL the server and the probe use, how to break the peer,
    and how to bring it back (returning once it is back)."""

    bus_url: str
    cut: Callable[[], Awaitable[object]]
    restore: Callable[[], Awaitable[object]]


Fault = Callable[[Instance], AbstractAsyncContextManager[Peer]]


@asynccontextmanager
async def nats_stopped(_: Instance) -> AsyncIterator[Peer]:
    """A private NATS server (so nothing else on the machine is disturbed), stopped for 3 s."""

    async def restore() -> None:
        await asyncio.sleep(OUTAGE)  # pacing: the outage
        await asyncio.to_thread(nats.start, 0)  # returns once the port accepts connections

    with NatsCluster(1) as nats:
        yield Peer(nats.urls[0], lambda: asyncio.to_thread(nats.stop, 0), restore)


@asynccontextmanager
async def rabbitmq_stopped(_: Instance) -> AsyncIterator[Peer]:
    """The machine's RabbitMQ, `stop_app` for 3 s."""

    async def restore() -> None:
        await asyncio.sleep(OUTAGE)  # pacing: the outage
        await rabbitmqctl("start_app")

    try:
        yield Peer(ensure_rabbitmq(), lambda: rabbitmqctl("stop_app"), restore)
    finally:
        await rabbitmqctl("start_app")


@asynccontextmanager
async def asterisk_restarted(inst: Instance) -> AsyncIterator[Peer]:
    """`core restart now` on the server's Asterisk; back once ARI answers again."""

    yield Peer(
        ensure_nats(),
        lambda: asyncio.to_thread(inst.cli, "core restart now"),
        lambda: asterisk_back(inst),
    )


FAULTS: dict[str, tuple[str, Fault]] = {
    "nats": ("NATS stopped 3 s", nats_stopped),
    "rabbitmq": ("RabbitMQ stop_app 3 s", rabbitmq_stopped),
    "asterisk": ("Asterisk core restart now", asterisk_restarted),
}


async def once(
    fault: Fault, inst: Instance, server: Callable[[str], Served]
) -> tuple[float, float]:
    """One fault against one server: (outage, recovery) in seconds."""
    async with fault(inst) as peer:
        running = server(peer.bus_url)
        try:
            await running.ready(timeout=30)
            async with ari_proxy.connect(peer.bus_url, application=APP, timeout=1.0) as client:
                probe = Probe(client, inst.entity_id)
                stop = asyncio.Event()
                probing = asyncio.create_task(probe.run(stop))
                try:
                    await wait_until(lambda: len(probe.answered_at) >= 5, timeout=30)
                    await peer.cut()
                    await peer.restore()
                    back_at = time.monotonic()
                    await wait_until(lambda: any(t > back_at for t in probe.answered_at), 60)
                finally:
                    stop.set()
                    await probing
            return probe.outage_and_recovery(back_at)
        finally:
            running.stop()


async def run(inst: Instance, which: list[str], *, rounds: int = 3) -> str:
    """The table of every fault named (all by default), or of those named."""
    ref = find_goref()
    servers: dict[str, Callable[[str], Served]] = {
        "ours": lambda url: OurServer(inst, url, APP).start(),
    }
    if ref is not None:
        servers = {"Go": lambda url: ref.server(inst, url, APP).start(), **servers}
    rows = []
    for key in which or list(FAULTS):
        name_of_fault, fault = FAULTS[key]
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        for r in range(rounds):
            for name in list(servers) if r % 2 == 0 else list(reversed(servers)):
                figures[name].append(await once(fault, inst, servers[name]))
        for name, runs in figures.items():
            rows.append(
                [
                    name_of_fault,
                    name,
                    f"{statistics.median(o for o, _ in runs):.2f}",
                    f"{statistics.median(r for _, r in runs):.2f}",
                    f"{max(r for _, r in runs):.2f}",
                ]
            )
    note = "" if ref is not None else "\n\n(Go rows: not measured, the Go binaries were not found)"
    title = f"Recovery: a request every {PERIOD * 1000:.0f} ms, medians of {rounds} rounds"
    header = ["fault", "server", "outage s", "back after s (median)", "back after s (worst)"]
    return table(title, rows, header) + note
