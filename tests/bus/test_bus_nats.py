"""The NATS transport against a real nats-server.

The first half is the behaviour every transport shares, run on NATS and on the in-memory
transport alike (`new_bus`); the second half is NATS only: error translation, payload limits,
credentials, reconnects through a TCP proxy, a supervisor restart and cluster failover.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

import nats.errors
import pytest
from bus_contract import close_drains_handlers_and_fails_pending_requests

from ari_proxy._exceptions import (
    ClientClosedError,
    ConnectError,
    NoProxyError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)
from ari_proxy.bus import BusMessage, BusState, NatsTransport
from ari_proxy.bus._errors import NATS_ERRORS, translate_nats_error
from ari_proxy.testing import NatsCluster
from ari_proxy.testing._tcpproxy import TcpProxy

if TYPE_CHECKING:
    from conftest import AuthNats, BusFactory, Until

# --- behaviour shared with the in-memory transport ---------------------------------------------


async def test_request_gets_the_first_reply(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        server, client = await new_bus(), await new_bus()

        async def answer(message: BusMessage) -> None:
            await server.reply(message, b"re:" + message.data)

        await server.serve(f"{topic}.get", answer)
        assert await client.request(f"{topic}.get", b"one", timeout=2) == b"re:one"
        assert await client.request(f"{topic}.get", b"two", timeout=2) == b"re:two"


async def test_request_without_responders_fails_at_once(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        client = await new_bus()
        started = time.monotonic()
        with pytest.raises(NoProxyError, match="nobody serves"):
            await client.request(f"{topic}.nobody", b"{}", timeout=5)
        assert time.monotonic() - started < 1.0


async def test_request_times_out(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        server, client = await new_bus(), await new_bus()
        seen: list[bytes] = []
        await server.serve(f"{topic}.mute", lambda message: seen.append(message.data))
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as caught:
            await client.request(f"{topic}.mute", b"x", timeout=0.2)
        assert isinstance(caught.value, TimeoutError)
        assert 0.2 <= time.monotonic() - started < 1.5
        assert seen == [b"x"]


async def test_gather_collects_until_enough(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(20):
        client = await new_bus()
        for name in ("a", "b", "c"):
            server = await new_bus()

            async def answer(message: BusMessage, server=server, name=name) -> None:
                await server.reply(message, name.encode())

            await server.serve(f"{topic}.get", answer)

        started = time.monotonic()
        two = await client.gather(f"{topic}.get", b"", timeout=3, enough=lambda r: len(r) >= 2)
        assert len(two) == 2 and set(two) <= {b"a", b"b", b"c"}
        assert time.monotonic() - started < 1.5  # stopped early, not at the timeout

        every = await client.gather(f"{topic}.get", b"", timeout=3, enough=lambda r: len(r) >= 3)
        assert sorted(every) == [b"a", b"b", b"c"]

        started = time.monotonic()
        waited = await client.gather(f"{topic}.get", b"", timeout=0.3, enough=lambda r: False)
        assert sorted(waited) == [b"a", b"b", b"c"]
        assert time.monotonic() - started >= 0.3


async def test_gather_uses_an_rp_reply_subject(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        server, client = await new_bus(), await new_bus()
        replies_to: list[str] = []

        async def answer(message: BusMessage) -> None:
            replies_to.append(message.reply)
            await server.reply(message, b"ok")

        await server.serve(f"{topic}.get", answer)
        assert await client.gather(f"{topic}.get", b"", timeout=2, enough=bool) == [b"ok"]
        (reply,) = replies_to
        assert reply.endswith("-rp") and len(reply) == 29 and "." not in reply


async def test_gather_without_responders_returns_nothing_at_once(
    new_bus: BusFactory, topic: str
) -> None:
    async with asyncio.timeout(10):
        client = await new_bus()
        started = time.monotonic()
        assert await client.gather(f"{topic}.none", b"", timeout=3, enough=bool) == []
        assert time.monotonic() - started < 1.0


async def test_gather_raises_what_enough_raises(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        server, client = await new_bus(), await new_bus()

        async def answer(message: BusMessage) -> None:
            await server.reply(message, b"ok")

        def broken(replies: list[bytes]) -> bool:
            raise LookupError("enough broke")

        await server.serve(f"{topic}.get", answer)
        with pytest.raises(LookupError, match="enough broke"):
            await client.gather(f"{topic}.get", b"", timeout=2, enough=broken)


@pytest.mark.parametrize("method", ["serve", "subscribe"])
async def test_queue_group_delivers_each_message_once(
    new_bus: BusFactory, topic: str, until: Until, method: str
) -> None:
    async with asyncio.timeout(20):
        publisher = await new_bus()
        got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
        everything: list[bytes] = []
        for member in range(3):
            bus = await new_bus()
            await getattr(bus, method)(f"{topic}.create", got[member].append, group="ariproxy")
        await (await new_bus()).subscribe(f"{topic}.create", everything.append)

        for i in range(300):
            await publisher.publish(f"{topic}.create", str(i).encode())

        await until(lambda: sum(map(len, got.values())) >= 300 and len(everything) >= 300)
        await asyncio.sleep(0.1)  # a duplicate would arrive about now
        delivered = [m.data for ms in got.values() for m in ms]
        assert Counter(delivered) == Counter(str(i).encode() for i in range(300))
        assert all(got.values()), {member: len(ms) for member, ms in got.items()}
        assert len(everything) == 300  # a plain subscriber still sees every message


async def test_wildcard_subscriptions(new_bus: BusFactory, topic: str, until: Until) -> None:
    async with asyncio.timeout(10):
        bus = await new_bus()
        tail: list[str] = []
        one: list[str] = []
        await bus.subscribe(f"{topic}.event.>", lambda m: tail.append(m.subject))
        await bus.subscribe(f"{topic}.event.*.n1", lambda m: one.append(m.subject))
        for subject in ("event.app.n1", "event.app.n2", "event.app", "event", "other.app.n1"):
            await bus.publish(f"{topic}.{subject}", b"")
        await bus.publish(f"{topic}.event.end.n1", b"")  # both see it last
        await until(lambda: bool(tail and one) and tail[-1] == one[-1] == f"{topic}.event.end.n1")
        assert tail == [f"{topic}.event.{s}" for s in ("app.n1", "app.n2", "app", "end.n1")]
        assert one == [f"{topic}.event.app.n1", f"{topic}.event.end.n1"]


async def test_unsubscribe_stops_delivery(new_bus: BusFactory, topic: str, until: Until) -> None:
    async with asyncio.timeout(10):
        bus = await new_bus()
        first: list[bytes] = []
        marker: list[bytes] = []
        sub = await bus.subscribe(f"{topic}.x", lambda m: first.append(m.data))
        await bus.subscribe(f"{topic}.x", lambda m: marker.append(m.data))
        assert sub.subject == f"{topic}.x"
        await bus.publish(f"{topic}.x", b"1")
        await until(lambda: first == [b"1"] and marker == [b"1"])
        await sub.unsubscribe()
        await sub.unsubscribe()  # idempotent
        await bus.publish(f"{topic}.x", b"2")
        await until(lambda: marker == [b"1", b"2"])
        assert first == [b"1"]


async def test_handler_exceptions_do_not_end_a_subscription(
    new_bus: BusFactory, topic: str, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncio.timeout(10):
        bus = await new_bus()
        plain: list[bytes] = []
        coro: list[bytes] = []

        def plain_handler(message: BusMessage) -> None:
            plain.append(message.data)
            if message.data == b"boom":
                raise RuntimeError("plain handler failed")

        async def coro_handler(message: BusMessage) -> None:
            coro.append(message.data)
            if message.data == b"boom":
                raise RuntimeError("coroutine handler failed")

        await bus.subscribe(f"{topic}.p", plain_handler)
        await bus.subscribe(f"{topic}.c", coro_handler)
        for data in (b"boom", b"after"):
            await bus.publish(f"{topic}.p", data)
            await bus.publish(f"{topic}.c", data)
        await until(lambda: plain == coro == [b"boom", b"after"])
        await until(lambda: len([r for r in caplog.records if r.exc_info]) >= 2)
        failures = [r.getMessage() for r in caplog.records if r.exc_info]
        assert f"bus handler for subject {topic}.p failed" in failures
        assert f"bus handler for subject {topic}.c failed" in failures


async def test_inflight_handlers_are_bounded(
    new_bus: BusFactory, topic: str, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncio.timeout(10):
        bus = await new_bus(max_inflight=2)
        release = asyncio.Event()
        started: list[bytes] = []
        finished: list[bytes] = []

        async def slow(message: BusMessage) -> None:
            started.append(message.data)
            await release.wait()
            finished.append(message.data)

        await bus.subscribe(f"{topic}.slow", slow)
        for i in range(10):
            await bus.publish(f"{topic}.slow", str(i).encode())
        await until(lambda: bus.dropped == 8)
        assert started == [b"0", b"1"]
        assert any("dropped 1 message(s)" in r.getMessage() for r in caplog.records)
        release.set()
        await until(lambda: len(finished) == 2)
        await bus.publish(f"{topic}.slow", b"later")
        await until(lambda: started[-1:] == [b"later"])
        # A partial of a coroutine function counts against the same bound.
        bounded = await new_bus(max_inflight=1)
        gate = asyncio.Event()
        calls: list[str] = []

        async def waits(tag: str, message: BusMessage) -> None:
            calls.append(tag)
            await gate.wait()

        await bounded.subscribe(f"{topic}.partial", functools.partial(waits, "p"))
        for _ in range(3):
            await bounded.publish(f"{topic}.partial", b"")
        await until(lambda: bounded.dropped == 2)
        assert calls == ["p"]
        gate.set()


async def test_ping_reaches_every_server(new_bus: BusFactory, topic: str, until: Until) -> None:
    async with asyncio.timeout(10):
        client = await new_bus()
        pings: list[int] = []
        for n in range(2):
            server = await new_bus()
            await server.on_ping(f"{topic}.ping", lambda m, n=n: pings.append(n))
        await client.ping(f"{topic}.ping", b'{"kind":"","key":null}')
        await until(lambda: sorted(pings) == [0, 1])


async def test_invalid_subjects_are_refused(new_bus: BusFactory, topic: str) -> None:
    async with asyncio.timeout(10):
        bus = await new_bus()
        for bad in ("", "a b", "a..b", "a.", f"{topic}.*", f"{topic}.>", "a\r\nPUB x"):
            with pytest.raises(ProtocolError):
                await bus.publish(bad, b"")
            with pytest.raises(ProtocolError):
                await bus.request(bad, b"", timeout=0.1)
        for bad in ("a.>.b", "a.b*", "a..b", "a b", ""):
            with pytest.raises(ProtocolError):
                await bus.subscribe(bad, print)
        with pytest.raises(ProtocolError):
            await bus.serve(f"{topic}.x", print, group="a group")


async def test_close_drains_handlers_and_fails_pending_requests(
    new_bus: BusFactory, topic: str, until: Until
) -> None:
    async with asyncio.timeout(15):
        server, client = await new_bus(), await new_bus()
        await close_drains_handlers_and_fails_pending_requests(
            server, client, requests=topic, events=topic, settle=0.05
        )


async def test_publish_before_connect_is_refused(
    new_bus: BusFactory, topic: str, until: Until
) -> None:
    async with asyncio.timeout(10):
        connected = await new_bus()
        # A second transport of the same kind, not connected yet.
        fresh = (
            connected.broker.transport()
            if hasattr(connected, "broker")
            else NatsTransport(connected.servers)
        )
        try:
            assert fresh.state is BusState.CONNECTING
            with pytest.raises(TransportError, match="connect"):
                await fresh.publish(f"{topic}.x", b"")
            # Subscribing first is fine: the subscription starts with the connection.
            seen: list[bytes] = []
            await fresh.subscribe(f"{topic}.early", lambda m: seen.append(m.data))
            await fresh.connect()
            assert fresh.state is BusState.CONNECTED
            await connected.publish(f"{topic}.early", b"hello")
            await until(lambda: bool(seen))
            assert seen == [b"hello"]
        finally:
            await fresh.close()


# --- NATS only ---------------------------------------------------------------------------------


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
        (nats.errors.AuthorizationError(), False, ConnectError),
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
        connecting = asyncio.ensure_future(refused.connect())
        await until(lambda: any(failed(r) for r in caplog.records))
        await refused.close()
        with pytest.raises(ClientClosedError) as caught:
            await connecting
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
