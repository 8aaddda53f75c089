"""Faults with calls flowing: what is lost, what the application is told, how long until normal.

`python -m bench chaos [scenario ...]` (or `scripts/chaos`) runs each scenario against the real
stack: an Asterisk 22 sandbox, a proxy beside it, three application instances in `listen()` and
Local calls arriving at a steady rate (straight through ARI, so the fault does not stop them),
plus a probe request every 100 ms. It prints one row per scenario: calls placed, never taken,
taken twice and left in Asterisk; the calls told about a gap; probe requests sent, failed and
run after their caller saw an error; dialog bindings left after the last call; and the outage
as the probe saw it (first failure to first success after the fault).

Scenarios: `nats-restart` (a NATS server stopped for 3 s), `nats-node-kill` (in a 3-node
cluster, the node the server is on killed for 3 s, the instances being on the others),
`rabbitmq-restart` (`rabbitmqctl stop_app` for 3 s), `asterisk-restart` (`core restart now` with
calls up), `bus-cut` and `ari-cut` (the server's link to NATS, or to Asterisk, cut for 5 s
through a TCP proxy: connections dropped, new ones refused), `proxy-kill` and `proxy-term` (the
proxy process SIGKILLed, or SIGTERMed, and started again with calls up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import ari_proxy
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect
from ari_proxy.server import Server
from ari_proxy.testing import (
    CallSource,
    Instance,
    Ledger,
    NatsCluster,
    TcpProxy,
    ensure_nats,
    ensure_rabbitmq,
    proxy_env,
    takers,
    wait_until,
)

from ._servers import asterisk_back, rabbitmqctl

RATE = 3.0
OUTAGE = 3.0
APP = "chaos"


@dataclass
class Probe:
    """A request every 100 ms; bridge creates with our own IDs, so a late run is visible."""

    client: ari_proxy.Client
    node: str
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    failures_at: list[float] = field(default_factory=list)
    successes_at: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(self._one(f"{APP}-probe-{os.getpid()}-{self.sent}")))
            self.sent += 1
            await asyncio.sleep(0.1)  # pacing: one request every 100 ms
        await asyncio.gather(*tasks)

    async def _one(self, bridge: str) -> None:
        try:
            await self.client.with_options(timeout=1.0).bridges.create(
                bridge_id=bridge, node=self.node
            )
        except ari_proxy.AriProxyError:
            self.failed.append(bridge)
            self.failures_at.append(time.monotonic())
        else:
            self.succeeded.append(bridge)
            self.successes_at.append(time.monotonic())

    def outage(self, fault_at: float) -> tuple[float, float]:
        """(seconds of failures, seconds from the fault to the first success after them)."""
        after = [t for t in self.failures_at if t >= fault_at - 0.5]
        if not after:
            return 0.0, 0.0
        last = max(after)
        back = min((t for t in self.successes_at if t > last), default=last)
        return last - min(after), back - fault_at


@dataclass
class Row:
    scenario: str
    ledger: Ledger
    probe: Probe | None = None
    left: int = 0
    ran_late: int = 0
    bindings_left: int | None = None
    fault_at: float = 0.0

    def cells(self) -> list[str]:
        s = self.ledger.summary()
        gaps = sum(1 for c in self.ledger.taken if self.ledger.gaps.get(c))
        probe = self.probe
        down, back = probe.outage(self.fault_at) if probe else (0.0, 0.0)
        return [
            self.scenario,
            str(s["placed"]),
            str(s["never_taken"]),
            str(s["taken_twice"]),
            str(self.left),
            str(gaps),
            f"{probe.sent}/{len(probe.failed)}/{self.ran_late}" if probe else "-",
            "-" if self.bindings_left is None else str(self.bindings_left),
            f"{down:.1f} s / {back:.1f} s" if probe else "-",
        ]


HEADER = [
    "scenario",
    "calls placed",
    "never taken",
    "taken twice",
    "left in Asterisk",
    "calls told of a gap",
    "requests sent/failed/run late",
    "bindings left",
    "outage / back after",
]


async def settle(source: CallSource, timeout: float = 60.0) -> int:
    """Wait until no placed call is left in Asterisk (bounded); return how many are left."""
    left = await source.left_in_asterisk()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while left:
                await asyncio.sleep(0.5)  # polling: nothing announces "no call left"
                left = await source.left_in_asterisk()
    await source.hang_up_all()
    return len(left)


async def ran_late(asterisk: Instance, probe: Probe) -> int:
    """Probe requests that failed for their caller but ran in Asterisk; cleans up."""
    async with ari_proxy.connect(
        asterisk.http_url,
        application=f"{APP}-check",
        username=asterisk.username,
        password=asterisk.password,
    ) as native:
        existing = {h.id for h in await native.bridges.list()}
        for bridge in existing & set(probe.failed + probe.succeeded):
            with contextlib.suppress(ari_proxy.NotFoundError):
                await native.bridges.handle(bridge).destroy()
    return len(existing & set(probe.failed))


@contextlib.asynccontextmanager
async def in_process(
    asterisk: Instance, bus_url: str | list[str], **overrides: object
) -> AsyncIterator[Server]:
    from ari_proxy.testing import running_proxy

    urls = [bus_url] if isinstance(bus_url, str) else bus_url
    async with running_proxy(asterisk, urls[0], APP, bus_urls=tuple(urls), **overrides) as server:
        yield server


async def bindings_after(server: Server, timeout: float = 10.0) -> int:
    """Dialog bindings left `timeout` seconds after the last call (0 as soon as it is 0)."""
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: server.stats()["dialog_bindings"] == 0, timeout=timeout)
    left = server.stats()["dialog_bindings"]
    return left if isinstance(left, int) else -1


async def under_fault(
    name: str,
    asterisk: Instance,
    bus_url: str | list[str],
    stop: Callable[[], Awaitable[object]],
    start: Callable[[], Awaitable[object]],
    *,
    client_url: str | list[str] | None = None,
    outage: float = OUTAGE,
    **server: object,
) -> Row:
    """Calls and probe requests flowing through an in-process server on `bus_url` (its
    instances and probe on `client_url`, by default the same), `stop()`, `outage` seconds,
    `start()`; then what became of them. `server` overrides the server's configuration."""
    ledger = Ledger()
    row = Row(name, ledger)
    clients = client_url or bus_url
    async with in_process(asterisk, bus_url, **server) as proxy, takers(clients, APP, ledger):
        async with proxy_connect(APP, clients, timeout=2.0) as client:
            probe = Probe(client, proxy.node)
            row.probe = probe
            done = asyncio.Event()
            probing = asyncio.create_task(probe.run(done))
            async with CallSource(asterisk, APP, ledger) as source:
                placing = asyncio.create_task(source.place(int(RATE * 10), RATE))
                await asyncio.sleep(2.0)  # pacing: calls and requests flow before the fault
                row.fault_at = time.monotonic()
                await stop()
                await asyncio.sleep(outage)  # pacing: the outage
                await start()
                await placing
                row.left = await settle(source)
            done.set()
            await probing
        row.bindings_left = await bindings_after(proxy)
    row.ran_late = await ran_late(asterisk, probe)
    return row


async def nats_restart(asterisk: Instance) -> Row:
    with NatsCluster(1) as nats:
        return await under_fault(
            "NATS stopped 3 s",
            asterisk,
            nats.urls[0],
            lambda: asyncio.to_thread(nats.stop, 0),
            lambda: asyncio.to_thread(nats.start, 0),
        )


async def rabbitmq_restart(asterisk: Instance) -> Row:
    url = ensure_rabbitmq()
    try:
        return await under_fault(
            "RabbitMQ stop_app 3 s",
            asterisk,
            url,
            lambda: rabbitmqctl("stop_app"),
            lambda: rabbitmqctl("start_app"),
        )
    finally:
        await rabbitmqctl("start_app")


async def _proxy(asterisk: Instance, bus_url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ari_proxy.server",
        env=proxy_env(asterisk, bus_url, APP, PROXY_LISTEN_RESUME_GRACE="1s"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def proxy_kill(asterisk: Instance) -> Row:
    return await _proxy_restart(asterisk, signal.SIGKILL, "proxy SIGKILL, restarted")


async def _proxy_restart(asterisk: Instance, sig: signal.Signals, name: str) -> Row:
    url = ensure_nats()
    ledger = Ledger()
    row = Row(name, ledger)
    proxy = await _proxy(asterisk, url)
    try:
        async with takers(url, APP, ledger, hold=None) as group:
            client = group[0].client
            assert isinstance(client, ProxyClient)
            await wait_until(lambda: bool(client.nodes()), timeout=30)
            async with CallSource(asterisk, APP, ledger) as source:
                await source.place(9, RATE)
                with contextlib.suppress(TimeoutError):
                    await wait_until(lambda: len(ledger.taken) >= 9, timeout=20)
                proxy.send_signal(sig)
                await proxy.wait()
                row.fault_at = time.monotonic()
                proxy = await _proxy(asterisk, url)
                with contextlib.suppress(TimeoutError):
                    await wait_until(lambda: len(ledger.gaps) >= len(ledger.taken), timeout=20)
                for taker in group:
                    taker.release()
                row.left = await settle(source)
    finally:
        if proxy.returncode is None:
            proxy.send_signal(signal.SIGTERM)
            await proxy.wait()
    return row


async def nats_node_kill(asterisk: Instance) -> Row:
    with NatsCluster(3) as nats:
        # The server is on node 0 (the one killed), the instances and the probe on the others.
        return await under_fault(
            "NATS cluster: the server's node killed 3 s",
            asterisk,
            nats.urls,
            lambda: asyncio.to_thread(nats.stop, 0),
            lambda: asyncio.to_thread(nats.start, 0),
            client_url=[nats.urls[1], nats.urls[2]],
        )


async def asterisk_restart(asterisk: Instance) -> Row:
    return await under_fault(
        "Asterisk core restart now",
        asterisk,
        ensure_nats(),
        lambda: asyncio.to_thread(asterisk.cli, "core restart now"),
        lambda: asterisk_back(asterisk),
        outage=0.0,
    )


async def _link_cut(asterisk: Instance, side: str) -> Row:
    """The server's link to the bus, or to Asterisk, cut for 5 s through a TCP proxy."""
    nats = ensure_nats()
    target = urlsplit(nats if side == "bus" else asterisk.http_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 0) as link:
        if side == "bus":
            options: dict[str, object] = {"bus_url": link.url("nats"), "client_url": nats}
        else:
            options = {
                "bus_url": nats,
                "ari_http_url": f"http://127.0.0.1:{link.port}/ari",
                "ari_websocket_url": f"ws://127.0.0.1:{link.port}/ari/events",
            }
        return await under_fault(
            f"{'bus' if side == 'bus' else 'ARI'} link of the server cut 5 s",
            asterisk,
            stop=link.cut,
            start=link.restore,
            outage=5.0,
            **options,  # type: ignore[arg-type]
        )


async def proxy_term(asterisk: Instance) -> Row:
    return await _proxy_restart(asterisk, signal.SIGTERM, "proxy SIGTERM, restarted")


SCENARIOS: dict[str, Callable[[Instance], Awaitable[Row]]] = {
    "nats-restart": nats_restart,
    "nats-node-kill": nats_node_kill,
    "rabbitmq-restart": rabbitmq_restart,
    "asterisk-restart": asterisk_restart,
    "bus-cut": lambda asterisk: _link_cut(asterisk, "bus"),
    "ari-cut": lambda asterisk: _link_cut(asterisk, "ari"),
    "proxy-kill": proxy_kill,
    "proxy-term": proxy_term,
}


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


async def run(asterisk: Instance, which: list[str]) -> str:
    rows = []
    for name in which or list(SCENARIOS):
        rows.append(await SCENARIOS[name](asterisk))
    return (
        f"### Faults with calls flowing ({RATE:g} calls/s, 3 instances in listen(), "
        "a probe request every 100 ms)\n\n" + table(rows)
    )
