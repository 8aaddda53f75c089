"""The health probes: `/livez` (and `/healthz`) answer 200 while the process serves; `/readyz`
answers 200 only when ARI and the bus are connected and an announcement went out, 503 before
the first announcement, while ARI or the bus is down, and during shutdown.

The unit tests run against `FakeAri` and the in-memory bus; the integration test points a real
server at a real Asterisk that it starts late, stops and starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from server_helpers import ARI_PROXY, proxy_env

from ari_proxy.bus import MemoryBroker, MemoryTransport
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import InstanceSpec, free_port, make_spec, start, stop, wait_until
from ari_proxy.testing._fake_ari import FakeAri


async def probe(server: Server, path: str) -> tuple[int, Any]:
    """(status, body: JSON for /readyz, text otherwise) of a GET on the server's listener."""
    assert server.monitor.url is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.monitor.url + path) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if path == "/readyz" else text


async def wait_ready(server: Server, status: int, timeout: float = 15.0) -> Any:
    """Poll /readyz (bounded) until it answers `status`; return its body."""
    seen: tuple[int, Any] = (0, None)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while (seen := await probe(server, "/readyz"))[0] != status:
                await asyncio.sleep(0.05)  # the state has no event to wait for
    assert seen[0] == status, seen
    return seen[1]


async def assert_alive(server: Server) -> None:
    for path in ("/livez", "/healthz"):
        assert await probe(server, path) == (200, "ok\n"), path


@contextlib.asynccontextmanager
async def fake_stack() -> AsyncIterator[tuple[Server, FakeAri, MemoryBroker, MemoryTransport]]:
    """A server (not started) on FakeAri and the memory bus, its listener on a free port; the
    server's bus and a client transport share the broker."""
    async with FakeAri() as fake:
        broker = MemoryBroker()
        bus, client = broker.transport(), broker.transport()
        await bus.connect()
        await client.connect()
        config = ServerConfig(
            applications=("app",),
            ari_username=fake.username,
            ari_password=fake.password,
            ari_http_url=fake.http_url,
            metrics_address="127.0.0.1:0",
            shutdown_grace=2.0,
        )
        server = Server(config, bus=bus)
        try:
            yield server, fake, broker, client
        finally:
            await server.stop()
            await client.close()
            await bus.close()


async def test_not_ready_before_ari_and_before_the_first_announcement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fake_stack() as (server, fake, _, _):
        fake.answer("GET", "/events", 503, {"message": "not yet"})  # ARI refuses at first
        gate = asyncio.Event()
        announce = server.announcer.announce

        async def held_announce() -> None:
            await gate.wait()
            await announce()

        monkeypatch.setattr(server.announcer, "announce", held_announce)
        starting = asyncio.get_running_loop().create_task(server.start(ari_timeout=30))
        try:
            await wait_until(lambda: server.monitor.port is not None)
            await assert_alive(server)  # alive while ARI is awaited
            body = await wait_ready(server, 503)
            assert body["ari"] == "connecting" and body["serving"] is False
            fake.reset()  # ARI answers: connected, subscribed, but not announced yet
            await wait_until(lambda: server.ready, timeout=15)
            body = await wait_ready(server, 503)
            assert body == {
                "ready": False,
                "serving": True,
                "ari": "connected",
                "bus": "connected",
                "announced": False,
                "node": fake.entity_id,
            }
            gate.set()
            body = await wait_ready(server, 200)
            assert body["ready"] is True and body["announced"] is True
            await starting
        finally:
            gate.set()
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)


async def test_not_ready_while_ari_or_the_bus_is_down() -> None:
    async with fake_stack() as (server, fake, broker, _):
        await server.start(ari_timeout=10)
        await wait_ready(server, 200)
        fake.answer("GET", "/events", 503, {"message": "down for the test"})
        await fake.drop_websockets()
        body = await wait_ready(server, 503)
        assert body["ari"] == "reconnecting" and body["bus"] == "connected"
        await assert_alive(server)  # ARI down is not a reason to restart the process
        fake.reset()
        await wait_ready(server, 200)
        bus = server.bus
        assert isinstance(bus, MemoryTransport)
        broker.cut(bus)
        body = await wait_ready(server, 503)
        assert body["ari"] == "connected" and body["bus"] == "reconnecting"
        await assert_alive(server)
        broker.restore(bus)
        await wait_ready(server, 200)


async def test_not_ready_during_shutdown_then_gone() -> None:
    async with fake_stack() as (server, fake, _, client):
        await server.start(ari_timeout=10)
        await wait_ready(server, 200)
        # A request that Asterisk never answers keeps the shutdown waiting (shutdown_grace).
        fake.stall("GET", "/mailboxes")
        listing = asyncio.get_running_loop().create_task(
            client.request(
                f"ari.get.app.{server.node}", b'{"kind":"MailboxList","key":null}', timeout=10
            )
        )
        await wait_until(lambda: server.stats()["inflight"] == 1)
        stopping = asyncio.get_running_loop().create_task(server.stop())
        try:
            body = await wait_ready(server, 503)
            assert body["serving"] is False and body["ari"] == "connected"
            await assert_alive(server)  # stopping gracefully: not a reason to kill it
            assert not stopping.done()
            await stopping
        finally:
            listing.cancel()  # cancelled by the server after the grace: it gets no reply
            await asyncio.gather(stopping, listing, return_exceptions=True)
        with pytest.raises(aiohttp.ClientConnectionError):  # the listener went last
            await probe(server, "/livez")


async def test_unknown_path_is_404() -> None:
    async with fake_stack() as (server, _, _, _):
        await server.start(ari_timeout=10)
        status, _ = await probe(server, "/nothing-here")
        assert status == 404


# --- the command ----------------------------------------------------------------------------------


async def test_command_serves_probes_while_asterisk_is_unreachable() -> None:
    """`ari-proxy` with ARI on a closed port: alive, not ready, metrics served; SIGTERM ends it
    cleanly (exit 0) and the listener with it."""
    port = free_port()
    env = proxy_env(
        ARI_USERNAME="user",
        ARI_PASSWORD="secret-pw",
        ARI_APPLICATION="app",
        ARI_HTTP_URL=f"http://127.0.0.1:{free_port()}/ari",  # nothing listens there
        MESSAGEBUS_URL="nats://127.0.0.1:1",
        PROXY_METRICS_ADDRESS=f"127.0.0.1:{port}",
    )
    proc = await asyncio.create_subprocess_exec(
        ARI_PROXY, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def status(path: str) -> int:
                try:
                    async with session.get(base + path) as response:
                        return response.status
                except aiohttp.ClientConnectionError:
                    return 0  # not listening yet

            async with asyncio.timeout(20):
                while await status("/livez") != 200:
                    await asyncio.sleep(0.05)  # the process is starting
            assert await status("/readyz") == 503
            assert await status("/metrics") == 200
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    served = [
        json.loads(line) for line in err.decode().splitlines() if "metrics and health" in line
    ]
    assert served and served[0]["port"] == port


def test_command_fails_on_a_busy_metrics_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = proxy_env(
            ARI_USERNAME="user",
            ARI_PASSWORD="secret-pw",
            ARI_APPLICATION="app",
            MESSAGEBUS_URL="nats://127.0.0.1:1",
            PROXY_METRICS_ADDRESS=f"127.0.0.1:{port}",
        )
        result = subprocess.run(
            [ARI_PROXY], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 1
    assert "proxy.metrics_address" in result.stderr and "secret-pw" not in result.stderr


# --- a real Asterisk, started late, stopped and started again -------------------------------------


@pytest.fixture
def late_asterisk() -> Iterator[InstanceSpec]:
    """An Asterisk instance's spec, not started: the test starts (and stops) it."""
    spec = make_spec(f"srv-health-{os.getpid()}")
    try:
        yield spec
    finally:
        stop(spec.name)


async def test_health_with_a_real_asterisk(
    late_asterisk: InstanceSpec, nats_url: str, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = late_asterisk
    config = ServerConfig(
        applications=(app_name,),
        ari_username=spec.username,
        ari_password=spec.password,
        ari_http_url=f"http://127.0.0.1:{spec.http_port}/ari",
        bus_urls=(nats_url,),
        metrics_address="127.0.0.1:0",
        shutdown_grace=3.0,
    )
    server = Server(config)
    starting = asyncio.get_running_loop().create_task(server.start(ari_timeout=120))
    try:
        # Asterisk is not running yet: alive, not ready, nothing announced.
        await wait_until(lambda: server.monitor.port is not None)
        await assert_alive(server)
        body = await wait_ready(server, 503)
        assert body["ari"] == "connecting" and body["announced"] is False
        await asyncio.to_thread(start, spec)
        body = await wait_ready(server, 200, timeout=60)
        assert body["node"] == spec.entity_id and body["bus"] == "connected"
        await starting
        # Asterisk stops: not ready, still alive; it starts again: ready.
        await asyncio.to_thread(stop, spec.name)
        body = await wait_ready(server, 503, timeout=30)
        assert body["ari"] == "reconnecting"
        await assert_alive(server)
        metrics = server.metrics.registry
        assert metrics.get_sample_value("ari_proxy_ari_connected") == 0
        assert metrics.get_sample_value("ari_proxy_ready") == 0
        await asyncio.to_thread(start, spec)
        await wait_ready(server, 200, timeout=60)
        assert metrics.get_sample_value("ari_proxy_ari_reconnects_total") == 1
        # Shutdown: not ready while the queued events go out (held here), alive, then gone.
        gate = asyncio.Event()
        flush = server.publisher.flush

        async def held_flush(timeout: float) -> int:
            await gate.wait()
            return await flush(timeout)

        monkeypatch.setattr(server.publisher, "flush", held_flush)
        stopping = asyncio.get_running_loop().create_task(server.stop())
        body = await wait_ready(server, 503)
        assert body["serving"] is False
        await assert_alive(server)
        gate.set()
        await stopping
        with pytest.raises(aiohttp.ClientConnectionError):
            await probe(server, "/readyz")
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await server.stop()
