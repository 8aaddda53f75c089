"""Faults with calls flowing, on a stack of OS processes: what is lost, what the application is
told, how long until normal (issue 14; `python -m bench chaos`, `tests/chaos`).

The stack: two Asterisk sandboxes, a proxy process beside each (`ProxyProcess`), four
application instances in `listen()` (`Fleet`, `python -m ari_proxy.testing.instance --hold`),
Local calls originated through each node's ARI and SIP calls from sipp at a steady rate, a
watcher on each node's ARI that sees every channel (`STASISSTATUS` tells a call Asterisk refused
from one it put in Stasis), and a probe request every 100 ms. `run_scenario` runs one fault
through it and returns an `Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .._exceptions import (
    AriProxyError,
    ConnectionDownError,
    NotFoundError,
    RequestTimeout,
    TransportError,
)
from ..api import Client
from ..ari import AriClient
from ..ari import connect as ari_connect
from ..client import connect as proxy_connect
from ..protocol import parse_go_datetime
from ..spec.models import ChannelCreated, ChannelVarset, Message
from ._asterisk import Instance, free_port
from ._fleet import Callers, Fleet
from ._goref import wait_serving
from ._proxy import proxy_env, wait_until
from ._services import NatsCluster, ensure_nats
from ._sipp import SippResult, sipp_calls
from ._tcpproxy import TcpProxy
from ._tls import RabbitMQNode

__all__ = [
    "SCENARIOS",
    "Outcome",
    "Pace",
    "Probe",
    "ProxyProcess",
    "Stack",
    "asterisk_back",
    "rss",
    "run_scenario",
]

INSTANCES = 4


async def asterisk_back(inst: Instance) -> None:
    """After `core restart now` (which returns before Asterisk stops): until Asterisk has gone
    and ARI answers again. Asterisk says neither, so ARI is asked every 20 ms."""
    for down in (True, False):
        while await asyncio.to_thread(inst.answers, 0.2) == down:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # polling, see above


def rss(pid: int) -> int:
    """The resident memory of process `pid`, in bytes (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Pace:
    """How long each phase lasts and how much traffic flows (the CI runs a short one)."""

    local_rate: float = 2.0
    """Local calls per second, over both nodes."""
    sip_per_node: int = 10
    """SIP calls per node, one a second from the start."""
    before: float = 3.0
    """Seconds of traffic before the fault."""
    outage: float = 3.0
    after: float = 4.0
    """Seconds of traffic after the fault is over."""
    hold: float = 4.0
    """Seconds each instance keeps a call up."""
    listen_deadline: str = ""
    """The proxies' `proxy.listen_deadline`, when not their default."""


@dataclass
class ProxyProcess:
    """One `python -m ari_proxy.server` process beside `asterisk`, with /metrics on a port of
    its own; `env` adds or replaces settings (e.g. `ARI_HTTP_URL` through a TCP proxy)."""

    asterisk: Instance
    bus_url: str
    application: str
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    process: asyncio.subprocess.Process | None = None
    metrics_port: int = field(default_factory=free_port)

    async def start(self) -> None:
        env = proxy_env(
            self.asterisk,
            self.bus_url,
            self.application,
            PROXY_METRICS_ADDRESS=f"127.0.0.1:{self.metrics_port}",
            **self.env,
        )
        log = await asyncio.to_thread(open, self.log or os.devnull, "ab")
        with log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ari_proxy.server",
                env=env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        await wait_serving(
            self.bus_url.split(",")[0],
            self.asterisk.entity_id,
            self.application,
            alive=self._alive,
            timeout=30,
        )

    def _alive(self) -> None:
        if self.process is None or self.process.returncode is not None:
            raise RuntimeError(f"the proxy beside {self.asterisk.name} is not running")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)
            async with asyncio.timeout(30):
                await self.process.wait()

    def _metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith(f"ari_proxy_{name} "):
                    return float(line.split()[1])
        raise LookupError(name)

    async def metric(self, name: str) -> float:
        """A gauge or counter of its /metrics (without the `ari_proxy_` prefix)."""
        return await asyncio.to_thread(self._metric, name)


@dataclass
class Probe:
    """A request every 100 ms (a bridge create with our own ID, so a late run is visible)."""

    client: Client
    node: str
    prefix: str
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    timed_out: int = 0
    gave_up_at: dict[str, float] = field(default_factory=dict)
    """Bridge -> when its request failed for the caller (Unix time, as Asterisk's clock)."""
    in_doubt: set[str] = field(default_factory=set)
    """Bridges whose request failed with the bus link lost while it was in flight: the caller
    was told it may or may not have run."""
    failures_at: list[float] = field(default_factory=list)
    successes_at: list[float] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(self._one(f"{self.prefix}-{self.sent}")))
            self.sent += 1
            await asyncio.sleep(0.1)  # pacing: one request every 100 ms
        await asyncio.gather(*tasks)

    async def _one(self, bridge: str) -> None:
        self.made.append(bridge)
        try:
            await self.client.with_options(timeout=1.0).bridges.create(
                bridge_id=bridge, node=self.node
            )
        except AriProxyError as exc:
            self.gave_up_at[bridge] = time.time()
            if isinstance(exc, TransportError) and not isinstance(exc, ConnectionDownError):
                self.in_doubt.add(bridge)
            self.failed.append(bridge)
            self.failures_at.append(time.monotonic())
            if isinstance(exc, RequestTimeout):
                self.timed_out += 1
        else:
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
class Watcher:
    """Every channel of one node, through a native ARI connection subscribed to all: created
    (with its name) and the `STASISSTATUS` the Stasis application left on it (`FAILED`: Asterisk
    refused the call, no one holding the application)."""

    node: str
    names: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    def __call__(self, event: Message) -> None:
        if isinstance(event, ChannelCreated):
            self.names[f"{self.node}/{event.channel.id}"] = event.channel.name
        elif (
            isinstance(event, ChannelVarset)
            and event.variable == "STASISSTATUS"
            and event.channel is not None
        ):
            self.status[f"{self.node}/{event.channel.id}"] = event.value


@dataclass
class Outcome:
    """What became of the calls, requests and events of one scenario."""

    scenario: str
    started: int = 0
    completed: int = 0
    refused: int = 0
    never_taken: int = 0
    dropped: int = 0
    taken_twice: int = 0
    requests: int = 0
    failed: int = 0
    timed_out: int = 0
    ran_late: int = 0
    """Failed requests that Asterisk ran after their caller gave up (by the bridge's creation
    time): what must never happen."""
    ran_unanswered: int = 0
    """Failed requests that ran all the same: before their caller gave up (the answer lost), or
    with the bus link lost while they were in flight (the caller told they may have run)."""
    events_acked: int = 0
    events_lost_told: int = 0
    """Events lost in calls whose instance was told of a gap (`ConnectionGap`)."""
    events_lost_untold: int = 0
    events_late: int = 0
    calls_told_of_gap: int = 0
    outage: float = 0.0
    back_after: float = 0.0
    left_in_asterisk: int = 0
    bindings_left: int = 0
    probe_ok_at_end: bool = False
    handed_over: int = 0
    handover_delays: list[float] = field(default_factory=list)
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Process -> (RSS at start, RSS at end), in bytes."""
    note: str = ""

    @property
    def lost(self) -> int:
        """Calls lost by us: entered Stasis and never taken, or dropped mid-call."""
        return self.never_taken + self.dropped

    @property
    def handover(self) -> str:
        if not self.handed_over:
            return "-"
        delays = self.handover_delays
        if not delays:
            return str(self.handed_over)
        return (
            f"{self.handed_over} in {statistics.median(delays):.1f} s (worst {max(delays):.1f} s)"
        )


Fault = Callable[["Stack"], Awaitable[None]]


@dataclass
class Stack:
    """The processes of one scenario, and what the fault needs to reach them."""

    nodes: list[Instance]
    bus_url: str
    application: str
    logs: Path
    proxies: list[ProxyProcess] = field(default_factory=list)
    fleet: Fleet | None = None
    pace: Pace = field(default_factory=Pace)
    fault_wall: float = 0.0
    """time.time() of the fault, for the handover delays the instances report."""
    notes: list[str] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        found = {f"proxy {i + 1}": p.pid for i, p in enumerate(self.proxies)}
        if self.fleet is not None:
            found |= {f"instance {n}": p.pid for n, p in sorted(self.fleet.processes.items())}
        found |= {f"Asterisk {i + 1}": n.pid for i, n in enumerate(self.nodes)}
        found["runner"] = os.getpid()
        return found

    async def outage(self) -> None:
        await asyncio.sleep(self.pace.outage)  # pacing: the outage lasts this long


@contextlib.asynccontextmanager
async def _stack(
    nodes: list[Instance],
    bus_urls: list[str],
    application: str,
    logs: Path,
    pace: Pace,
    proxy_env_of: Callable[[int], dict[str, str]],
    client_urls: list[str] | None = None,
) -> AsyncIterator[Stack]:
    stack = Stack(nodes, ",".join(bus_urls), application, logs, pace=pace)
    clients = ",".join(client_urls or bus_urls)
    deadline = {"PROXY_LISTEN_DEADLINE": pace.listen_deadline} if pace.listen_deadline else {}
    stack.proxies = [
        ProxyProcess(
            node,
            stack.bus_url,
            application,
            env={"PROXY_LISTEN_RESUME_GRACE": "1s", **deadline, **proxy_env_of(i)},
            log=logs / f"proxy-{i + 1}.log",
        )
        for i, node in enumerate(nodes)
    ]
    try:
        await asyncio.gather(*(proxy.start() for proxy in stack.proxies))
        async with Fleet(clients, application, logs) as fleet:
            stack.fleet = fleet
            hold = str(pace.hold)
            await asyncio.gather(*(fleet.start(f"i{i}", "--hold", hold) for i in range(INSTANCES)))
            try:
                yield stack
            finally:
                (logs / "said.json").write_text(json.dumps(fleet.lines))
    finally:
        for proxy in stack.proxies:
            await proxy.stop()


async def _place_local(
    callers: Callers, rate: float, until: asyncio.Event, failed: list[str]
) -> None:
    """Local calls at `rate` per second over the nodes, in turn, until `until` is set."""
    turn = 0
    while not until.is_set():
        started = time.monotonic()
        node, client = callers.nodes[turn % 2], callers.clients[turn % 2]
        turn += 1
        try:
            handle = await client.channels.originate("Local/wait@default", app=callers.app)
            callers.local.append(f"{node.entity_id}/{handle.id}")
        except (AriProxyError, OSError) as exc:
            failed.append(str(exc))
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


async def _ours_left(callers: Callers, names: dict[str, str]) -> set[str]:
    """Channels of the run still in Asterisk (Local calls placed, SIP channels seen)."""
    try:
        existing = await callers.existing()
    except (AriProxyError, OSError):
        return set(callers.local) | set(names)
    ours = set(callers.local) | {k for k, n in names.items() if n.startswith("PJSIP/")}
    return existing & ours


async def run_scenario(
    name: str,
    nodes: list[Instance],
    logs: Path | None = None,
    pace: Pace | None = None,
    application: str | None = None,
) -> Outcome:
    """Run scenario `name` (a key of `SCENARIOS`) on the two sandbox `nodes`."""
    pace = pace or Pace()
    logs = logs or Path(tempfile.mkdtemp(prefix=f"ari-proxy-chaos-{name}-"))
    application = application or f"chaos-{os.getpid()}-{name}"
    setup = SCENARIOS[name]
    async with setup(nodes, application, logs, pace) as (stack, fault):
        return await _under_fault(name, stack, fault)


async def _under_fault(name: str, stack: Stack, fault: Fault) -> Outcome:
    outcome = Outcome(name)
    pace = stack.pace
    assert stack.fleet is not None
    fleet = stack.fleet
    watchers = [Watcher(n.entity_id) for n in stack.nodes]
    first = {k: rss(pid) for k, pid in stack.pids().items()}
    async with contextlib.AsyncExitStack() as exits:
        watch_clients: list[AriClient] = []
        for node, watcher in zip(stack.nodes, watchers, strict=True):
            client = await ari_connect(
                node.http_url,
                node.username,
                node.password,
                f"{stack.application}-watch",
                subscribe_all=True,
            )
            exits.push_async_callback(client.close)
            await client.on(["ChannelCreated", "ChannelVarset"], watcher)
            watch_clients.append(client)
        callers = await exits.enter_async_context(Callers(stack.application, stack.nodes))
        probe_client = await exits.enter_async_context(
            proxy_connect(stack.application, stack.bus_url.split(","), timeout=2.0)
        )
        probe = Probe(probe_client, stack.nodes[0].entity_id, f"{stack.application}-probe")
        probing_stop, placing_stop = asyncio.Event(), asyncio.Event()
        probing = asyncio.create_task(probe.run(probing_stop))
        refused_originates: list[str] = []
        placing = asyncio.create_task(
            _place_local(callers, pace.local_rate, placing_stop, refused_originates)
        )
        sip: list[asyncio.Task[SippResult]] = [
            asyncio.create_task(
                sipp_calls(
                    node,
                    f"stasis-{stack.application}",
                    calls=pace.sip_per_node,
                    rate=1,
                    # Calls that die with their Asterisk get no BYE: sipp waits for them until
                    # this (the calls are placed one a second, then held, through the fault).
                    timeout=pace.sip_per_node + pace.outage + pace.hold + 30,
                )
            )
            for node in stack.nodes
        ]
        try:
            await asyncio.sleep(pace.before)  # pacing: calls and requests flow before the fault
            fault_at = time.monotonic()
            stack.fault_wall = time.time()
            await fault(stack)
            await asyncio.sleep(pace.after)  # pacing: traffic after the fault
        finally:
            placing_stop.set()
            await placing
        sip_results = await asyncio.gather(*sip, return_exceptions=True)
        names: dict[str, str] = {}
        for watcher in watchers:
            names |= watcher.names
        # Back to normal: no call of ours left in Asterisk (bounded), a probe request answered.
        left = await _ours_left(callers, names)
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # polling: nothing announces "no call left"
            left = await _ours_left(callers, names)
        outcome.left_in_asterisk = len(left)
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: bool(probe.successes_at) and _recent(probe), timeout=30)
        probing_stop.set()
        await probing
        outcome.probe_ok_at_end = bool(probe.successes_at) and _recent(probe, 5.0)
        with contextlib.suppress(AriProxyError, OSError):
            await callers.hang_up_all()
        outcome.ran_late, outcome.ran_unanswered = await _ran_late(watch_clients[0], probe)
        outcome.bindings_left = await _bindings_left(stack)
    outcome.memory = {k: (first.get(k, 0), rss(pid)) for k, pid in stack.pids().items()}
    _tally(outcome, stack, fleet, watchers, callers, refused_originates, sip_results)
    outcome.requests, outcome.failed = probe.sent, len(probe.failed)
    outcome.timed_out = probe.timed_out
    outcome.outage, outcome.back_after = probe.outage(fault_at)
    outcome.note = "; ".join(stack.notes)
    return outcome


def _recent(probe: Probe, within: float = 1.0) -> bool:
    return bool(probe.successes_at) and time.monotonic() - probe.successes_at[-1] < within


async def _ran_late(native: Client, probe: Probe) -> tuple[int, int]:
    """Probe requests that failed for their caller but ran in Asterisk: (run after the caller
    gave up, run all the same: before it did, or in doubt); removes every bridge the probe
    made."""
    existing = {h.id for h in await native.bridges.list()}
    late = unanswered = 0
    for bridge in existing & set(probe.failed):
        if bridge in probe.in_doubt:
            unanswered += 1
            continue
        with contextlib.suppress(NotFoundError):
            created = parse_go_datetime((await native.bridges.handle(bridge).data()).creationtime)
            # Asterisk's time is to the millisecond: within one of the give-up, count it late.
            if created.timestamp() + 0.001 > probe.gave_up_at[bridge]:
                late += 1
            else:
                unanswered += 1
    for bridge in existing & set(probe.made):
        with contextlib.suppress(NotFoundError):
            await native.bridges.handle(bridge).destroy()
    return late, unanswered


async def _bindings_left(stack: Stack) -> int:
    """Dialog bindings left in both proxies, waited for (bounded) to drain to 0."""
    total = -1
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            total = 0
            for proxy in stack.proxies:
                total += int(await proxy.metric("dialog_bindings"))
        except (OSError, LookupError):
            total = -1
        if total == 0:
            return 0
        await asyncio.sleep(0.2)  # polling: the gauge announces nothing
    return total


def _tally(
    outcome: Outcome,
    stack: Stack,
    fleet: Fleet,
    watchers: list[Watcher],
    callers: Callers,
    refused_originates: list[str],
    sip_results: list[SippResult | BaseException],
) -> None:
    status: dict[str, str] = {}
    names: dict[str, str] = {}
    for watcher in watchers:
        status |= watcher.status
        names |= watcher.names
    sip_channels = [k for k, n in names.items() if n.startswith("PJSIP/")]
    sip_made = stack.pace.sip_per_node * len(stack.nodes)
    no_channel = max(0, sip_made - len(sip_channels))  # INVITEs Asterisk never answered
    calls = list(callers.local) + sip_channels
    outcome.started = len(calls) + len(refused_originates) + no_channel
    refused = {c for c in calls if status.get(c) == "FAILED"}
    outcome.refused = len(refused) + len(refused_originates) + no_channel
    taken: dict[str, list[str]] = {}
    for line in fleet.said("taken"):
        taken.setdefault(line["channel"], []).append(line["name"])
    handed = fleet.said("handover")
    outcome.handed_over = len(handed)
    outcome.handover_delays = [
        line["t"] - stack.fault_wall for line in handed if line["t"] >= stack.fault_wall
    ]
    ended = fleet.said("ended")
    completed = {line["channel"] for line in ended if line["completed"]}
    outcome.completed = len(completed & set(calls))
    outcome.never_taken = len([c for c in calls if c not in taken and c not in refused])
    outcome.dropped = len([c for c in taken if c not in completed])
    outcome.taken_twice = len([c for c, who in taken.items() if len(who) > 1])
    for line in ended:
        outcome.events_acked += line["acked"]
        outcome.events_late += line["late"]
        if line["gaps"]:
            outcome.calls_told_of_gap += 1
            outcome.events_lost_told += line["lost"]
        else:
            outcome.events_lost_untold += line["lost"]
    for result in sip_results:
        if isinstance(result, BaseException):
            stack.notes.append(f"sipp: {result!r}")


# --- the scenarios ----------------------------------------------------------------------------

Setup = Callable[
    [list[Instance], str, Path, Pace], contextlib.AbstractAsyncContextManager[tuple[Stack, Fault]]
]


def _no_env(_: int) -> dict[str, str]:
    return {}


@contextlib.asynccontextmanager
async def _nats(
    nodes: list[Instance], app: str, logs: Path, pace: Pace, *, size: int
) -> AsyncIterator[tuple[Stack, Fault]]:
    """NATS node 0 stopped for the outage: the only one, or in a cluster of `size` the one the
    proxies are on first, the instances being on the others."""
    with NatsCluster(size) as nats:

        async def fault(stack: Stack) -> None:
            await asyncio.to_thread(nats.stop, 0)
            await stack.outage()
            await asyncio.to_thread(nats.start, 0)

        clients = nats.urls[1:] if size > 1 else None
        async with _stack(nodes, nats.urls, app, logs, pace, _no_env, clients) as stack:
            yield stack, fault


@contextlib.asynccontextmanager
async def _rabbitmq(
    nodes: list[Instance], app: str, logs: Path, pace: Pace, *, kill: bool
) -> AsyncIterator[tuple[Stack, Fault]]:
    broker = RabbitMQNode()
    await asyncio.to_thread(broker.start)
    try:

        async def fault(stack: Stack) -> None:
            if kill:
                await asyncio.to_thread(broker.kill)
                await stack.outage()
                await asyncio.to_thread(broker.boot)
            else:
                await asyncio.to_thread(broker.ctl, "stop_app")
                await stack.outage()
                await asyncio.to_thread(broker.ctl, "start_app")

        async with _stack(nodes, [broker.url], app, logs, pace, _no_env) as stack:
            yield stack, fault
    finally:
        await asyncio.to_thread(broker.close)


def _on_nats(fault: Fault) -> Setup:
    """A scenario on the machine's NATS server, with `fault`."""

    @contextlib.asynccontextmanager
    async def setup(
        nodes: list[Instance], app: str, logs: Path, pace: Pace
    ) -> AsyncIterator[tuple[Stack, Fault]]:
        async with _stack(nodes, [ensure_nats()], app, logs, pace, _no_env) as stack:
            yield stack, fault

    return setup


async def _asterisk_restart(stack: Stack) -> None:
    await asyncio.to_thread(stack.nodes[0].cli, "core restart now")
    await asterisk_back(stack.nodes[0])


@contextlib.asynccontextmanager
async def _link_cut(
    nodes: list[Instance], app: str, logs: Path, pace: Pace, *, side: str
) -> AsyncIterator[tuple[Stack, Fault]]:
    """Proxy 1's link to the bus, or to its Asterisk, cut through a TCP proxy."""
    nats = ensure_nats()
    target = urlsplit(nats if side == "bus" else nodes[0].http_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 0) as link:

        def env(i: int) -> dict[str, str]:
            if i:
                return {}
            if side == "bus":
                return {"MESSAGEBUS_URL": link.url("nats")}
            return {
                "ARI_HTTP_URL": f"http://127.0.0.1:{link.port}/ari",
                "ARI_WEBSOCKET_URL": f"ws://127.0.0.1:{link.port}/ari/events",
            }

        async def fault(stack: Stack) -> None:
            await link.cut()
            await stack.outage()
            await link.restore()

        async with _stack(nodes, [nats], app, logs, pace, env) as stack:
            yield stack, fault


def _proxy_restart(sig: signal.Signals) -> Fault:
    async def fault(stack: Stack) -> None:
        await stack.proxies[0].stop(sig)
        await stack.proxies[0].start()

    return fault


async def _instance_stop(stack: Stack) -> None:
    assert stack.fleet is not None
    name, held = await _busiest(stack.fleet)
    stack.fault_wall = time.time()  # the handover delays count from here
    stack.fleet.signal(name, signal.SIGSTOP)
    stack.notes.append(f"the stopped instance held {held} calls")
    try:
        await stack.outage()
    finally:
        stack.fleet.signal(name, signal.SIGCONT)


async def _instance_kill(stack: Stack) -> None:
    assert stack.fleet is not None
    name, held = await _busiest(stack.fleet)
    stack.fault_wall = time.time()  # the handover delays count from here
    stack.fleet.kill(name)
    stack.notes.append(f"the killed instance held {held} calls")


async def _busiest(fleet: Fleet) -> tuple[str, int]:
    """The instance holding the most calls (taken or handed to it, not yet over), once one
    holds two (or after 10 s), and how many it holds."""

    def busiest() -> tuple[str, int]:
        held: dict[str, set[str]] = {name: set() for name in fleet.processes}
        for line in fleet.lines:
            event, name = line.get("event"), line.get("name", "")
            if event in ("taken", "handover") and name in held:
                held[name].add(line["channel"])
            elif event in ("ended", "released") and name in held:
                held[name].discard(line["channel"])
        name = max(held, key=lambda n: len(held[n]))
        return name, len(held[name])

    with contextlib.suppress(TimeoutError):
        await fleet.wait_for(lambda: busiest()[1] >= 2, 10)
    return busiest()


SCENARIOS: dict[str, Setup] = {
    "nats-restart": lambda *a: _nats(*a, size=1),
    "nats-node-kill": lambda *a: _nats(*a, size=3),
    "rabbitmq-restart": lambda *a: _rabbitmq(*a, kill=False),
    "rabbitmq-kill": lambda *a: _rabbitmq(*a, kill=True),
    "asterisk-restart": _on_nats(_asterisk_restart),
    "bus-cut": lambda *a: _link_cut(*a, side="bus"),
    "ari-cut": lambda *a: _link_cut(*a, side="ari"),
    "proxy-kill": _on_nats(_proxy_restart(signal.SIGKILL)),
    "proxy-term": _on_nats(_proxy_restart(signal.SIGTERM)),
    "instance-stop": _on_nats(_instance_stop),
    "instance-kill": _on_nats(_instance_kill),
}
"""Scenario name -> how to set its stack up and do its fault."""
