"""A real RabbitMQ restart under a running server and proxy client: both recover by themselves.

`rabbitmqctl stop_app` stops the broker's AMQP service: every connection is closed
(CONNECTION_FORCED), and every non-durable queue, the clients' exclusive event queues among
them, is gone; `start_app` brings it back empty of them. Nothing in the test touches the server
or the client in between: they must notice, reconnect, declare and consume everything again,
and serve requests, events and announcements as before.

The broker at 127.0.0.1:5672 is shared by the whole test suite, so it is started again in a
`finally` and the test returns only once it accepts connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

import ari_proxy
from ari_proxy.bus import BusState
from ari_proxy.bus._rabbitmq import RabbitTransport
from ari_proxy.client import ProxyClient
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance, tcp_open

log = logging.getLogger(__name__)

RECOVERY_LIMIT = 60.0
"""Seconds the server and the client get to serve requests again after the broker is back."""

OUTAGE = 2.0
"""Seconds the broker stays down: long enough for failed reconnect attempts and requests."""


async def rabbitmqctl(*args: str) -> None:
    """Run `rabbitmqctl -q <args>` without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {(err or out).decode()}")


async def wait_for_port(host: str, port: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(tcp_open, host, port):
            await asyncio.sleep(0.1)


@dataclass
class Restart:
    """When the broker's AMQP service went down and when it was back (`start_app` done)."""

    stopped_at: float = 0.0
    back_at: float = 0.0


@contextlib.asynccontextmanager
async def broker_down(rabbitmq_url: str) -> AsyncIterator[Restart]:
    """Stop the broker's AMQP service for the body of the `async with`; start it again on the
    way out, whatever happened, and wait until it accepts connections."""
    target = urlsplit(rabbitmq_url)
    host, port = target.hostname or "127.0.0.1", target.port or 5672
    restart = Restart()
    try:
        await rabbitmqctl("stop_app")
        restart.stopped_at = time.monotonic()
        yield restart
    finally:
        await rabbitmqctl("start_app")
        restart.back_at = time.monotonic()
        await wait_for_port(host, port, 60)


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        # Polling on purpose: the conditions are plain expressions over test state.
        while not predicate():
            await asyncio.sleep(0.02)


async def first_success(operation: Callable[[], Awaitable[object]], timeout: float) -> float:
    """Retry `operation` until it succeeds (each failure is expected while the bus is being
    repaired); return the time it succeeded."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await operation()
            except ari_proxy.AriProxyError as exc:
                log.debug("not yet: %r", exc)
                await asyncio.sleep(0.1)
            else:
                return time.monotonic()


@pytest.fixture
def broker_left_running(rabbitmq_url: str) -> Iterator[None]:
    """After the test, whatever happened to it (a timeout can stop the event loop before the
    `finally` of `broker_down` runs), the shared broker is running and accepting connections."""
    yield
    target = urlsplit(rabbitmq_url)
    host, port = target.hostname or "127.0.0.1", target.port or 5672
    if not tcp_open(host, port):
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        deadline = time.monotonic() + 60
        while not tcp_open(host, port):
            assert time.monotonic() < deadline, "RabbitMQ did not come back"
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("broker_left_running")
async def test_server_and_client_recover_from_a_broker_restart(
    asterisk: Instance, rabbitmq_url: str, app_name: str
) -> None:
    server = Server(
        ServerConfig(
            applications=(app_name,),
            ari_username=asterisk.username,
            ari_password=asterisk.password,
            ari_http_url=asterisk.http_url,
            bus_urls=(rabbitmq_url,),
            shutdown_grace=2.0,
        )
    )
    await server.start(ari_timeout=30)
    try:
        client = await ari_proxy.connect(
            rabbitmq_url, application=app_name, timeout=2.0, ping_interval=1.0
        )
        assert isinstance(client, ProxyClient)
        try:
            await _restart_under(server, client, asterisk.entity_id, rabbitmq_url)
        finally:
            await client.close()
    finally:
        await server.stop()


async def _restart_under(server: Server, client: ProxyClient, node: str, rabbitmq_url: str) -> None:
    server_bus, client_bus = server.bus, client._backend.transport
    assert isinstance(server_bus, RabbitTransport)
    assert isinstance(client_bus, RabbitTransport)
    assert server.node == node

    async def unicast() -> None:
        info = await client.asterisk.info(node=node)
        assert info.system is not None and info.system.entity_id == node

    reconnected: dict[str, float] = {}

    def on_state(side: str) -> Callable[[BusState], None]:
        def record(state: BusState) -> None:
            if state is BusState.CONNECTED:
                reconnected[side] = time.monotonic()

        return record

    server_bus.on_state(on_state("server"))
    client_bus.on_state(on_state("client"))

    # Before: everything works, and the event subscription is live on the bus.
    await unicast()
    await until(lambda: [n.node for n in client.nodes()] == [node], timeout=10)
    async with client.subscribe("StasisStart") as started:
        before = await _originate_and_see_it_start(client, node, started)
        await before.hangup()

        load = _Load(unicast, client)
        await load.start()
        async with broker_down(rabbitmq_url) as restart:
            await until(
                lambda: (
                    server_bus.state is BusState.RECONNECTING
                    and client_bus.state is BusState.RECONNECTING
                ),
                timeout=10,
            )
            with pytest.raises(ari_proxy.AriProxyError):  # timeout or transport error
                await unicast()
            # Pacing: the broker stays down for OUTAGE seconds in all.
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - restart.stopped_at)))
            assert reconnected == {}  # nothing connected while the broker was down
        stopped_at, back_at = restart.stopped_at, restart.back_at

        # Untouched since: both ends reconnect and serve again on their own.
        served_at = await first_success(unicast, RECOVERY_LIMIT)
        await until(lambda: "server" in reconnected and "client" in reconnected, RECOVERY_LIMIT)
        log.info(
            "broker down %.1f s; after it was back: client connected in %.2f s, server in "
            "%.2f s (subscriptions restored), first request served in %.2f s",
            back_at - stopped_at,
            reconnected["client"] - back_at,
            reconnected["server"] - back_at,
            served_at - back_at,
        )
        # The requests that were in flight through the restart failed with our errors (none
        # hung, none leaked a reply channel), and the same workers succeed again.
        await load.stop_after_successes(RECOVERY_LIMIT)
        assert load.unexpected == []
        assert load.failures_during(stopped_at, back_at) > 0
        assert client_bus.request_channels_open <= client_bus._pool.size

        # Requests: unicast, and a broadcast gather (a list over every proxy).
        assert server_bus.state is client_bus.state is BusState.CONNECTED
        for _ in range(20):
            await unicast()
        channel = await _originate_and_see_it_start(client, node, started)
        listed = {handle.id for handle in await client.channels.list()}
        assert channel.id in listed
        # Events: the subscription made before the restart still delivers (its exclusive
        # queue vanished with the broker and was declared and bound again), and so does a
        # new one.
        # (This originate names no node: it goes through the shared `ariproxy-ari.create.<app>`
        # queue, the one above through `ariproxy-ari.create.<app>.<node>`.)
        async with client.subscribe("StasisStart") as fresh:
            second = await _originate_and_see_it_start(client, None, started, fresh)
        await channel.hangup()
        await second.hangup()
        # Announcements: the client's pings reach the server and its answers come back.
        await until(
            lambda: any(n.node == node and n.last_seen > back_at for n in client.nodes()),
            timeout=10,
        )
        assert [n.node for n in client.nodes()] == [node]

    # Both transports saw exactly one interruption and lost no event to their bounds.
    assert server_bus.gaps == 1
    assert client_bus.gaps == 1
    assert server_bus.dropped_events == 0
    assert server_bus.dropped == client_bus.dropped == 0


class _Load:
    """Requests sent continuously by a few workers, unicast and broadcast, through the
    restart."""

    def __init__(self, unicast: Callable[[], Awaitable[None]], client: ProxyClient) -> None:
        self.operations: list[Callable[[], Awaitable[object]]] = [
            unicast,
            unicast,
            unicast,
            client.channels.list,
        ]
        self.outcomes: list[tuple[float, int, str]] = []  # (when, worker, outcome)
        self.unexpected: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the workers; return once each has had a request answered."""
        self._tasks = [
            asyncio.create_task(self._work(worker, operation))
            for worker, operation in enumerate(self.operations)
        ]
        workers = set(range(len(self._tasks)))
        await until(lambda: {w for _, w, _ in self.outcomes} == workers, timeout=10)

    async def _work(self, worker: int, operation: Callable[[], Awaitable[object]]) -> None:
        while not self._stop.is_set():
            try:
                await operation()
                outcome = "ok"
            except ari_proxy.AriProxyError as exc:
                outcome = type(exc).__name__
            except Exception as exc:  # anything else is a bug: a backend error leaked out
                self.unexpected.append(exc)
                outcome = "unexpected"
            self.outcomes.append((time.monotonic(), worker, outcome))
            if outcome != "ok":
                await asyncio.sleep(0.05)  # pacing: no busy loop while requests fail

    def failures_during(self, start: float, end: float) -> int:
        return sum(1 for t, _, outcome in self.outcomes if start <= t <= end and outcome != "ok")

    async def stop_after_successes(self, timeout: float) -> None:
        """Let every worker succeed a few times more, then stop them all."""
        mark = len(self.outcomes)

        def all_succeeded() -> bool:
            ok = Counter(worker for _, worker, o in self.outcomes[mark:] if o == "ok")
            return all(ok[worker] >= 3 for worker in range(len(self._tasks)))

        async with asyncio.timeout(timeout):
            while not all_succeeded():
                await asyncio.sleep(0.05)
        self._stop.set()
        async with asyncio.timeout(10):  # a worker stuck in a request would hang here
            await asyncio.gather(*self._tasks)


async def _originate_and_see_it_start(
    client: ProxyClient, node: str | None, *subscriptions: ari_proxy.Subscription
) -> ari_proxy.ChannelHandle:
    """Originate a Local channel into the application; every subscription sees its
    StasisStart."""
    channel = await client.channels.originate("Local/wait@default", node=node)
    for subscription in subscriptions:
        async with asyncio.timeout(10):
            while True:
                event = await subscription.next()
                if getattr(getattr(event, "channel", None), "id", None) == channel.id:
                    break
    return channel
