"""What handover's liveness costs (docs/handover.md): bus messages, and request latency.

Liveness reuses the presence heartbeat of `listen()`: each instance says it is there about
once a second, whatever its number of calls, and the server watches the owners of its calls
from those messages, without asking Asterisk. Measured here on one proxy:

- presence messages on the bus per second per instance, counted by a subscriber of its own,
  with three instances in `listen()` holding 30 calls;
- the latency of a request (`AsteriskInfo`) with no instance listening, then with those three
  instances and their 30 calls watched;
- the server's own work for liveness at scale, without Asterisk or a bus: the time one
  presence message costs, and one check of every owner, with 100 000 calls owned by 1 000
  instances (the check runs four times per liveness timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import ari_proxy
from ari_proxy.bus import BusMessage
from ari_proxy.bus import connect as bus_connect
from ari_proxy.protocol import Presence, PresenceRole, Subjects
from ari_proxy.server._handover import Snapshot
from ari_proxy.server._offers import CallOffers, Fallback
from ari_proxy.testing import Instance, running_proxy, wait_until

from ._stats import Sample, ms, serial, table

APP = "bench-liveness"
INSTANCES = 3
CALLS = 30
WINDOW = 10.0
"""Seconds the presence messages are counted."""


async def _latency(client: ari_proxy.Client, n: int, name: str) -> Sample:
    return await serial(name, lambda: client.asterisk.info(), n)


async def run(inst: Instance, bus_url: str, n: int = 1000) -> str:
    rows = []
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(running_proxy(inst, bus_url, APP))
        client = await stack.enter_async_context(
            ari_proxy.connect(bus_url, application=APP, timeout=5)
        )
        source = await stack.enter_async_context(
            ari_proxy.connect(
                inst.http_url,
                application=f"{APP}-source",
                username=inst.username,
                password=inst.password,
            )
        )
        idle = await _latency(client, n, "no instance listening")

        held: list[ari_proxy.Call] = []
        for _ in range(INSTANCES):
            instance = await stack.enter_async_context(
                ari_proxy.connect(bus_url, application=APP, timeout=5)
            )
            calls = await stack.enter_async_context(instance.listen())

            async def take(calls: ari_proxy.Calls = calls) -> None:
                async for call in calls:
                    held.append(call)

            stack.callback(asyncio.create_task(take()).cancel)
        await wait_until(lambda: server.offers.listeners.live(APP) == INSTANCES)
        placed = [
            await source.channels.originate("Local/wait@default", app=APP) for _ in range(CALLS)
        ]
        await wait_until(lambda: server.offers.owned == CALLS, timeout=30)

        counted = 0

        def count(message: BusMessage) -> None:
            nonlocal counted
            counted += 1

        bus = bus_connect(bus_url)
        await bus.connect()
        stack.push_async_callback(bus.close)
        subject = Subjects().presence(PresenceRole.LISTENER, APP)
        sub = await bus.subscribe(subject, count)
        started = time.monotonic()
        watched = await _latency(client, n, f"{INSTANCES} instances, {CALLS} calls watched")
        await asyncio.sleep(max(0.0, WINDOW - (time.monotonic() - started)))  # the window
        rate = counted / (time.monotonic() - started) / INSTANCES
        await sub.unsubscribe()
        for handle in placed:
            with contextlib.suppress(ari_proxy.NotFoundError):
                await handle.hangup()

    bus_name = bus_url.split(":")[0]
    for sample in (idle, watched):
        rows.append([bus_name, sample.name, ms(sample.median), ms(sample.percentile(0.99)), "", ""])
    rows[-1][4] = f"{rate:.2f}"
    rows[-1][5] = "0"
    return table(
        "Liveness for handover: presence messages per instance, and AsteriskInfo latency",
        rows,
        ["bus", "while", "median ms", "p99 ms", "presence msg/s per instance", "per call"],
    )


async def server_cost(instances: int = 1000, calls: int = 100_000, rounds: int = 20) -> str:
    """The server's liveness work at scale, timed in process."""

    async def publish(subject: str, data: bytes) -> bool:
        return True

    async def settle(app: str, channel: str, fallback: Fallback) -> None:
        return None

    async def snapshot(app: str, channels: Sequence[str]) -> dict[str, Snapshot]:
        return {}

    offers = CallOffers(
        publish, settle, Subjects(), node=lambda: "n", snapshot=snapshot, max_calls=calls
    )
    names = [f"in-{i}" for i in range(instances)]
    for i in range(calls):
        offers.take(APP, f"c{i}", names[i % instances], f"dl-{i}")
    beats = [
        Presence(role=PresenceRole.LISTENER, application=APP, instance=n, interval=1.0)
        for n in names
    ]
    started = time.perf_counter()
    for _ in range(rounds):
        for beat in beats:
            offers.on_presence(beat)
    per_presence = (time.perf_counter() - started) / (rounds * instances)
    started = time.perf_counter()
    for _ in range(rounds):
        offers.judge_owners()
    per_check = (time.perf_counter() - started) / rounds
    per_second = instances * per_presence + 4 / offers.liveness_timeout * per_check
    row = [
        str(instances),
        str(calls),
        f"{per_presence * 1e6:.1f}",
        f"{per_check * 1e3:.3f}",
        f"{per_second * 100:.3f}",
    ]
    return table(
        "Liveness work of one server (in process, no I/O)",
        [row],
        ["instances", "calls owned", "us per presence", "ms per check", "% of a core"],
    )
