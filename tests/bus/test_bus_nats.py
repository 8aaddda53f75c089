"""The NATS transport against a real nats-server.

The transport contract runs on it (`TestNatsTransport`, through `bus.connect`); the rest is
NATS only: the Go-compatible gather reply subject, error translation, the payload limit the
server sets, credentials, reconnects through a TCP proxy, a supervisor restart and cluster
failover.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import TYPE_CHECKING

import nats.errors
import pytest
from bus_contract import NewTransport, TransportContract

from ari_proxy._exceptions import (
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    NoProxyError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)
from ari_proxy.bus import BusMessage, BusState, NatsTransport, connect
from ari_proxy.bus._nats_errors import NATS_ERRORS, translate_nats_error
from ari_proxy.testing import NatsCluster
from ari_proxy.testing._tcpproxy import TcpProxy

if TYPE_CHECKING:
    from conftest import AuthNats, Until


class TestNatsTransport(TransportContract):
    """The transport contract, on the session's nats-server."""

    @pytest.fixture
    def new_transport(self, nats_url: str) -> NewTransport:
        return lambda **options: connect(nats_url, **options)


# --- NATS only ---------------------------------------------------------------------------------


async def test_gather_uses_an_rp_reply_subject(nats_url: str, topic: str) -> None:
    # As the Go client does: a gather publishes with a `<rid>-rp` reply subject.
    async with asyncio.timeout(10):
        server, client = NatsTransport([nats_url]), NatsTransport([nats_url])
        await server.connect()
        await client.connect()
        try:
            replies_to: list[str] = []

            async def answer(message: BusMessage) -> None:
                replies_to.append(message.reply)
                await server.reply(message, b"ok")

            await server.serve(f"{topic}.get", answer)
            assert await client.gather(f"{topic}.get", b"", timeout=2, enough=bool) == [b"ok"]
            (reply,) = replies_to
            assert reply.endswith("-rp") and len(reply) == 29 and "." not in reply
        finally:
            await server.close()
            await client.close()


def test_every_nats_exception_is_translated() -> None:
    exported = {
        obj
        for obj in vars(nats.errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == nats.errors.__name__
    }
    assert exported  # the check below must look at something
    assert exported - set(NATS_ERRORS) == set()


@pytest.mark.parametrize(
    ("error", "closed", "expected"),
    [
        (nats.errors.TimeoutError(), False, RequestTimeout),
        (nats.errors.NoRespondersError(), False, NoProxyError),
        (nats.errors.ConnectionClosedError(), True, ClientClosedError),
        (nats.errors.ConnectionClosedError(), False, TransportError),
        (nats.errors.MaxPayloadError(), False, TransportError),
        (nats.errors.AuthorizationError(), False, AuthenticationError),  # a ConnectError
        (nats.errors.Error("nats: 'Authorization Violation'"), False, AuthenticationError),
        (nats.errors.BadSubjectError(), False, ProtocolError),
        (nats.errors.UnexpectedEOF(), False, TransportError),
        (ConnectionRefusedError(111, "refused"), False, ConnectError),
        (TimeoutError(), False, ConnectError),
    ],
)
def test_translation(error: BaseException, closed: bool, expected: type) -> None:
    translated = translate_nats_error(error, closed=closed, context="ctx")
    assert type(translated) is expected
    assert str(translated).startswith("ctx: ")


async def test_publish_over_max_payload_is_a_clear_error(nats_url: str, topic: str) -> None:
    async with asyncio.timeout(10):
        bus = NatsTransport([nats_url])
        await bus.connect()
        try:
            limit = bus._link.nc.max_payload
            assert bus.max_payload == limit  # what the server said in its INFO
            with pytest.raises(TransportError, match="exceeds the NATS server's max_payload"):
                await bus.publish(f"{topic}.big", b"x" * (limit + 1))
            with pytest.raises(TransportError, match="max_payload"):
                await bus.request(f"{topic}.big", b"x" * (limit + 1), timeout=1)
            await bus.publish(f"{topic}.big", b"still works")
        finally:
            await bus.close()


def failed(record: logging.LogRecord) -> bool:
    return "could not connect" in record.getMessage()


async def test_connect_retries_until_the_server_answers(
    nats_url: str, topic: str, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = nats_url.removeprefix("nats://").split(":")
    async with asyncio.timeout(20), TcpProxy(host, int(port)) as proxy:
        await proxy.cut()
        secret = "hunter2-" + topic
        bus = NatsTransport([f"nats://ari:{secret}@127.0.0.1:{proxy.port}"], connect_timeout=1)
        try:
            connecting = asyncio.ensure_future(bus.connect())
            await until(lambda: len([r for r in caplog.records if failed(r)]) >= 2)
            assert bus.state is BusState.CONNECTING and not connecting.done()
            await proxy.restore()
            await connecting
            assert bus.state is BusState.CONNECTED
            assert bus.connected_url == f"nats://ari:***@127.0.0.1:{proxy.port}"
        finally:
            await bus.close()
        warnings = [r for r in caplog.records if "could not connect" in r.getMessage()]
        assert all(r.levelno == logging.WARNING for r in warnings)
        assert f"nats://ari:***@127.0.0.1:{proxy.port}" in warnings[0].getMessage()
        assert all(secret not in r.getMessage() for r in caplog.records)


@pytest.mark.integration
async def test_credentials_never_show(
    auth_nats: AuthNats, topic: str, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = auth_nats.password or auth_nats.token
    bad = "wrong-" + topic
    wrong = {"password": bad} if auth_nats.user else {"token": bad}
    async with asyncio.timeout(20):
        refused = NatsTransport(
            [f"nats://{auth_nats.address}"], user=auth_nats.user or None, connect_timeout=1, **wrong
        )
        # A refusal at the first connection is final: said at once, not retried until timeout.
        with pytest.raises(AuthenticationError) as caught:
            async with asyncio.timeout(1.0):
                await refused.connect()
        await refused.close()
        assert "refused the credentials" in str(caught.value)
        assert "Authorization" in str(caught.value)

        # The same secret in the URL instead, and right this time: it connects and works.
        userinfo = f"{auth_nats.user}:{secret}" if auth_nats.user else secret
        url = f"nats://{userinfo}@{auth_nats.address}"
        bus = NatsTransport([url])
        await bus.connect()
        try:
            await bus.serve(f"{topic}.x", lambda m: None)
            assert "***@" in bus.connected_url and secret not in bus.connected_url
            assert bus.servers == [bus.connected_url]
        finally:
            await bus.close()
    texts = [str(caught.value)] + [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert texts and all(secret not in text and bad not in text for text in texts)


async def test_reconnects_by_itself_after_a_cut(
    nats_url: str, topic: str, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    host, port = nats_url.removeprefix("nats://").split(":")
    async with asyncio.timeout(30), TcpProxy(host, int(port)) as proxy:
        # The server has no auth and ignores these credentials; the logs must not show them.
        secret = "pw-" + topic
        bus = NatsTransport(
            [f"nats://ari:{secret}@127.0.0.1:{proxy.port}"], reconnect_wait=(0.05, 1.0)
        )
        peer = NatsTransport([nats_url])
        await bus.connect()
        await peer.connect()
        try:
            states: list[BusState] = []
            bus.on_state(states.append)
            got: list[bytes] = []
            grouped: list[bytes] = []
            await bus.subscribe(f"{topic}.event", lambda m: got.append(m.data))
            await bus.subscribe(f"{topic}.listen", lambda m: grouped.append(m.data), group="g")

            async def answer(message: BusMessage) -> None:
                await bus.reply(message, b"pong")

            await bus.serve(f"{topic}.get", answer)
            assert await peer.request(f"{topic}.get", b"", timeout=2) == b"pong"

            await proxy.cut()
            cut_at = time.monotonic()
            await until(lambda: bus.state is BusState.RECONNECTING)
            detected = time.monotonic() - cut_at
            await asyncio.sleep(0.3)  # a short outage, with a few failed attempts
            assert bus.state is BusState.RECONNECTING
            await proxy.restore()
            restored_at = time.monotonic()
            await until(lambda: bus.state is BusState.CONNECTED)
            back = time.monotonic() - restored_at
            assert states == [BusState.RECONNECTING, BusState.CONNECTED]
            assert bus.gaps == 1
            assert proxy.accepted >= 2

            # Everything subscribed before the cut works again (nats-py replayed it).
            assert await peer.request(f"{topic}.get", b"", timeout=2) == b"pong"
            await peer.publish(f"{topic}.event", b"after")
            await peer.publish(f"{topic}.listen", b"after")
            await until(lambda: got == [b"after"] and grouped == [b"after"])
            assert await bus.request(f"{topic}.get", b"", timeout=2) == b"pong"
        finally:
            await bus.close()
            await peer.close()
    print(f"cut noticed after {detected * 1e3:.0f} ms, back {back * 1e3:.0f} ms after restore")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("lost the connection to NATS at nats://ari:***@") for m in messages)
    assert any(m.startswith("reconnected to NATS at nats://ari:***@") for m in messages)
    assert all(secret not in m for m in messages)


async def test_new_connection_when_nats_py_gives_up(
    nats_url: str, topic: str, until: Until
) -> None:
    async with asyncio.timeout(20):
        bus = NatsTransport([nats_url])
        peer = NatsTransport([nats_url])
        await bus.connect()
        await peer.connect()
        try:
            got: list[bytes] = []
            await bus.subscribe(f"{topic}.event", lambda m: got.append(m.data))
            first = bus._link.nc
            # What nats-py does after a fatal server error: close the connection for good.
            await first.close()
            await until(lambda: bus.state is BusState.CONNECTED and bus._link.nc is not first)
            assert bus.gaps == 1
            await peer.publish(f"{topic}.event", b"restored")
            await until(lambda: got == [b"restored"])
        finally:
            await bus.close()
            await peer.close()


async def test_cluster_failover(nats_cluster: NatsCluster, topic: str, until: Until) -> None:
    async with asyncio.timeout(60):
        server = NatsTransport(nats_cluster.urls, reconnect_wait=(0.05, 1.0))
        client = NatsTransport(nats_cluster.urls, reconnect_wait=(0.05, 1.0))
        await server.connect()
        await client.connect()
        try:

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"ok")

            await server.serve(f"{topic}.get", answer, group="ariproxy")

            async def served() -> float:
                # Routes spread interest between nodes asynchronously, and a request sent while
                # a link is down gets no answer: retry until one succeeds.
                while True:
                    try:
                        assert await client.request(f"{topic}.get", b"", timeout=0.5) == b"ok"
                        return time.monotonic()
                    except (NoProxyError, RequestTimeout):
                        await asyncio.sleep(0.02)

            await served()
            node = nats_cluster.urls.index(client.connected_url)
            stopped_at = time.monotonic()
            await asyncio.to_thread(nats_cluster.stop, node)
            await until(lambda: client.state is BusState.CONNECTED and client.gaps == 1, 15)
            moved = time.monotonic() - stopped_at
            assert client.connected_url in nats_cluster.urls
            assert client.connected_url != nats_cluster.urls[node]
            served_at = await served()
            # The server may have been on the stopped node too; either way it answers again.
            assert server.state is BusState.CONNECTED
        finally:
            await server.close()
            await client.close()
    print(
        f"client on another node {moved * 1e3:.0f} ms after the stop began; "
        f"requests answered again after {(served_at - stopped_at) * 1e3:.0f} ms"
    )


async def test_tcp_proxy_refuses_while_cut(nats_url: str) -> None:
    host, port = nats_url.removeprefix("nats://").split(":")
    async with asyncio.timeout(10), TcpProxy(host, int(port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert (await reader.readline()).startswith(b"INFO ")
        assert proxy.connections == 1
        await proxy.cut()
        try:
            rest = await reader.read()
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert (await reader.readline()).startswith(b"INFO ")
        writer.close()
        await writer.wait_closed()
        assert proxy.accepted == 2
