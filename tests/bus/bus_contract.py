"""The transport contract: what every `Transport` promises, written once.

A backend's test module runs the whole contract by subclassing `TransportContract` and giving
it one fixture, `new_transport`: a callable that makes a transport of that backend, not yet
connected, from keyword options (`prefix`, `max_inflight`, `drain_timeout`, ...). Every test
builds its transports through `Harness`, which closes them afterwards, and uses subjects under
a prefix of its own (`<topic>.`), so tests never see each other's messages even on a shared
broker. Subjects are ari-proxy's (`<prefix>get.app`, `<prefix>event.app.n1`, ...), which every
backend routes by their class (RabbitMQ picks its exchange by them).

Nothing here waits by sleeping: a test waits for the event it expects, or polls a condition
with a bound (`until`). Where a test must show that something does *not* happen (a duplicate
delivery), it sends a marker after the messages and waits for the marker: a transport delivers
one subscription's messages in the order they were published.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ari_proxy._exceptions import (
    ClientClosedError,
    NoProxyError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)
from ari_proxy.bus import BusMessage, BusState, BusSubscription, Transport

NewTransport = Callable[..., Transport]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` every few milliseconds until it is true, for at most `timeout` s."""
    async with asyncio.timeout(timeout):
        # Polling on purpose: the conditions are plain expressions over test state.
        while not predicate():
            await asyncio.sleep(0.005)


@dataclass
class Harness:
    """Transports of one backend for one test, all closed at its end."""

    new_transport: NewTransport
    prefix: str
    made: list[Transport] = field(default_factory=list)

    def fresh(self, **options: Any) -> Transport:
        """A transport not connected yet."""
        transport = self.new_transport(prefix=self.prefix, **options)
        self.made.append(transport)
        return transport

    async def bus(self, **options: Any) -> Transport:
        """A connected transport."""
        transport = self.fresh(**options)
        await transport.connect()
        return transport

    def subject(self, *tokens: str) -> str:
        """`<prefix><tokens joined by dots>`."""
        return self.prefix + ".".join(tokens)

    async def close_all(self) -> None:
        for transport in self.made:
            await transport.close()


async def flush_group(
    sender: Transport,
    subject: str,
    members: list[list[BusMessage]],
    *,
    request: bool = False,
) -> None:
    """Send markers to a queue group until every member received one (at most 200): every
    member then received whatever it was given before them."""
    for i in range(200):
        data = f"marker-{i}".encode()
        if request:
            await sender.request(subject, data, timeout=10)
        else:
            await sender.publish(subject, data)
            await until(lambda data=data: any(m.data == data for ms in members for m in ms))
        if all(any(m.data.startswith(b"marker-") for m in ms) for ms in members):
            return
    raise AssertionError("200 markers and still a member without one")


def payloads(messages: list[BusMessage]) -> list[bytes]:
    """The bodies of `messages`, markers left out."""
    return [m.data for m in messages if not m.data.startswith(b"marker-")]


class TransportContract:
    """The behaviour every `Transport` promises; subclass it with a `new_transport` fixture."""

    @pytest.fixture
    async def bus(self, new_transport: NewTransport, topic: str) -> AsyncIterator[Harness]:
        harness = Harness(new_transport, f"{topic}.")
        try:
            yield harness
        finally:
            await harness.close_all()

    # --- lifecycle and state -------------------------------------------------------------------

    async def test_states_from_connect_to_close(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            transport = bus.fresh()
            assert transport.state is BusState.CONNECTING
            states: list[BusState] = []
            transport.on_state(states.append)
            await transport.connect()
            assert transport.state is BusState.CONNECTED and states == [BusState.CONNECTED]
            assert transport.gaps == 0 and transport.dropped == 0
            await transport.close()
            assert transport.state is BusState.CLOSED
            assert states == [BusState.CONNECTED, BusState.CLOSED]
            with pytest.raises(ClientClosedError):
                await transport.connect()

    async def test_use_before_connect(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            connected = await bus.bus()
            fresh = bus.fresh()
            with pytest.raises(TransportError, match="connect"):
                await fresh.publish(bus.subject("event", "app", "n1"), b"")
            with pytest.raises(TransportError, match="connect"):
                await fresh.request(bus.subject("get", "app"), b"", timeout=1)
            # Subscribing first is fine: the subscription starts with the connection.
            seen: list[bytes] = []
            await fresh.subscribe(
                bus.subject("event", "app", "early"), lambda m: seen.append(m.data)
            )
            await fresh.connect()
            assert fresh.state is BusState.CONNECTED
            await connected.publish(bus.subject("event", "app", "early"), b"hello")
            await until(lambda: bool(seen))
            assert seen == [b"hello"]

    # --- requests ------------------------------------------------------------------------------

    async def test_request_gets_the_reply(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            server, client = await bus.bus(), await bus.bus()

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"re:" + message.data)

            await server.serve(bus.subject("get", "app", "n1"), answer)
            assert await client.request(bus.subject("get", "app", "n1"), b"one", timeout=5) == (
                b"re:one"
            )
            assert await client.request(bus.subject("get", "app", "n1"), b"two", timeout=5) == (
                b"re:two"
            )

    async def test_concurrent_requests_each_get_their_own_reply(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            server, client = await bus.bus(), await bus.bus()
            subject = bus.subject("data", "app", "n1")

            async def echo(message: BusMessage) -> None:
                await server.reply(message, message.data)

            await server.serve(subject, echo)
            sent = [str(i).encode() for i in range(50)]
            replies = await asyncio.gather(*(client.request(subject, d, timeout=10) for d in sent))
            assert replies == sent

    async def test_request_without_responders_fails_at_once(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            client = await bus.bus()
            started = time.monotonic()
            with pytest.raises(NoProxyError, match="nobody serves"):
                await client.request(bus.subject("get", "app", "nobody"), b"{}", timeout=5)
            assert time.monotonic() - started < 1.0

    async def test_request_times_out(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            server, client = await bus.bus(), await bus.bus()
            seen: list[bytes] = []
            await server.serve(bus.subject("get", "app"), lambda message: seen.append(message.data))
            started = time.monotonic()
            with pytest.raises(RequestTimeout) as caught:
                await client.request(bus.subject("get", "app"), b"x", timeout=0.3)
            assert isinstance(caught.value, TimeoutError)
            assert 0.3 <= time.monotonic() - started < 1.5
            assert seen == [b"x"]

    async def test_gather_collects_until_enough(self, bus: Harness) -> None:
        async with asyncio.timeout(30):
            client = await bus.bus()
            subject = bus.subject("get", "app")
            for name in ("a", "b", "c"):
                server = await bus.bus()

                async def answer(
                    message: BusMessage, server: Transport = server, name: str = name
                ) -> None:
                    await server.reply(message, name.encode())

                await server.serve(subject, answer)

            started = time.monotonic()
            two = await client.gather(subject, b"", timeout=5, enough=lambda r: len(r) >= 2)
            assert len(two) == 2 and set(two) <= {b"a", b"b", b"c"}
            every = await client.gather(subject, b"", timeout=5, enough=lambda r: len(r) >= 3)
            assert sorted(every) == [b"a", b"b", b"c"]
            assert time.monotonic() - started < 2.5  # each stopped when enough, not at 5 s

            started = time.monotonic()
            waited = await client.gather(subject, b"", timeout=0.4, enough=lambda r: False)
            assert sorted(waited) == [b"a", b"b", b"c"]
            assert time.monotonic() - started >= 0.4

            def broken(replies: list[bytes]) -> bool:
                raise LookupError("enough broke")

            with pytest.raises(LookupError, match="enough broke"):
                await client.gather(subject, b"", timeout=5, enough=broken)

    async def test_gather_without_responders_returns_nothing_at_once(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            client = await bus.bus()
            started = time.monotonic()
            assert (
                await client.gather(bus.subject("get", "none"), b"", timeout=5, enough=bool) == []
            )
            assert time.monotonic() - started < 1.0

    async def test_requests_carry_a_reply_address_and_events_do_not(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            server, client = await bus.bus(), await bus.bus()
            requests: list[BusMessage] = []
            events: list[BusMessage] = []

            async def answer(message: BusMessage) -> None:
                requests.append(message)
                await server.reply(message, b"ok")

            async def on_event(message: BusMessage) -> None:
                events.append(message)
                await server.reply(message, b"nobody to tell")  # no reply address: no-op

            await server.serve(bus.subject("command", "app", "n1"), answer)
            await server.subscribe(bus.subject("event", "app", "n1"), on_event)
            assert await client.request(bus.subject("command", "app", "n1"), b"q", timeout=5) == (
                b"ok"
            )
            await client.publish(bus.subject("event", "app", "n1"), b"e")
            await until(lambda: bool(events))
            (request,) = requests
            assert request.subject == bus.subject("command", "app", "n1")
            assert request.data == b"q" and request.reply
            (event,) = events
            assert event.subject == bus.subject("event", "app", "n1")
            assert event.data == b"e" and event.reply == ""

    # --- queue groups --------------------------------------------------------------------------

    async def test_a_group_of_servers_takes_each_request_once(self, bus: Harness) -> None:
        async with asyncio.timeout(30):
            client = await bus.bus()
            subject = bus.subject("create", "app")
            handled: list[list[BusMessage]] = [[], [], []]
            for member in range(3):
                server = await bus.bus()

                async def answer(
                    message: BusMessage, server: Transport = server, member: int = member
                ) -> None:
                    handled[member].append(message)
                    await server.reply(message, str(member).encode())

                await server.serve(subject, answer, group="ariproxy")

            sent = [str(i).encode() for i in range(30)]
            answers = await asyncio.gather(*(client.request(subject, d, timeout=10) for d in sent))
            await flush_group(client, subject, handled, request=True)
            assert Counter(d for ms in handled for d in payloads(ms)) == Counter(sent)
            assert all(payloads(ms) for ms in handled), [len(payloads(ms)) for ms in handled]
            by_member = Counter(
                str(m).encode() for m, ms in enumerate(handled) for _ in payloads(ms)
            )
            assert Counter(answers) == by_member

    @pytest.mark.parametrize("method", ["serve", "subscribe"])
    async def test_a_group_takes_each_published_message_once(
        self, bus: Harness, method: str
    ) -> None:
        async with asyncio.timeout(30):
            publisher = await bus.bus()
            subject = bus.subject("create" if method == "serve" else "event", "app", "n1")
            got: list[list[BusMessage]] = [[], [], []]
            for member in range(3):
                transport = await bus.bus()
                await getattr(transport, method)(subject, got[member].append, group="g1")
            everything: list[BusMessage] = []
            watcher = await bus.bus()
            await watcher.subscribe(subject, everything.append)
            # The same group on another subject is another set: it takes none of these.
            other = bus.subject("create" if method == "serve" else "event", "app", "other")
            elsewhere: list[BusMessage] = []
            await getattr(transport, method)(other, elsewhere.append, group="g1")

            sent = [str(i).encode() for i in range(100)]
            for data in sent:
                await publisher.publish(subject, data)
            await until(lambda: len(everything) >= 100)
            await flush_group(publisher, subject, got)
            await until(lambda: payloads(everything) == sent and len(everything) > 100)
            assert Counter(d for ms in got for d in payloads(ms)) == Counter(sent)
            assert all(payloads(ms) for ms in got), [len(payloads(ms)) for ms in got]
            await publisher.publish(other, b"other")
            await until(lambda: bool(elsewhere))
            assert [m.data for m in elsewhere] == [b"other"]

    # --- events, pings, announcements ----------------------------------------------------------

    async def test_events_arrive_in_publication_order(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            publisher, subscriber = await bus.bus(), await bus.bus()
            got: list[bytes] = []
            await subscriber.subscribe(
                bus.subject("event", "app", "n1"), lambda m: got.append(m.data)
            )
            sent = [str(i).encode() for i in range(200)]
            for data in sent:
                await publisher.publish(bus.subject("event", "app", "n1"), data)
            await until(lambda: len(got) >= 200)
            assert got == sent

    async def test_wildcard_subscriptions(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            publisher, subscriber = await bus.bus(), await bus.bus()
            tail: list[str] = []
            one: list[str] = []
            await subscriber.subscribe(bus.subject("event", ">"), lambda m: tail.append(m.subject))
            await subscriber.subscribe(
                bus.subject("event", "*", "n1"), lambda m: one.append(m.subject)
            )
            for tokens in ("event.app.n1", "event.app.n2", "event.app", "event", "other.app.n1"):
                await publisher.publish(bus.prefix + tokens, b"")
            last = bus.subject("event", "end", "n1")
            await publisher.publish(last, b"")  # both see it, last
            await until(lambda: tail[-1:] == one[-1:] == [last])
            assert tail == [
                bus.prefix + t for t in ("event.app.n1", "event.app.n2", "event.app")
            ] + [last]
            assert one == [bus.subject("event", "app", "n1"), last]

    async def test_pings_reach_every_server_and_announcements_every_client(
        self, bus: Harness
    ) -> None:
        async with asyncio.timeout(20):
            clients = [await bus.bus(), await bus.bus()]
            heard: list[list[bytes]] = [[], []]
            for client, seen in zip(clients, heard, strict=True):
                await client.subscribe(bus.subject("announce"), lambda m, s=seen: s.append(m.data))
            pinged: list[int] = []
            for node in range(2):
                server = await bus.bus()

                async def pong(
                    message: BusMessage, server: Transport = server, node: int = node
                ) -> None:
                    pinged.append(node)
                    await server.publish(bus.subject("announce"), f"node{node}".encode())

                await server.on_ping(bus.subject("ping"), pong)
            await clients[0].ping(bus.subject("ping"), b'{"kind":"","key":null}')
            await until(lambda: all(len(seen) == 2 for seen in heard))
            assert sorted(pinged) == [0, 1]
            assert all(sorted(seen) == [b"node0", b"node1"] for seen in heard)

    async def test_unsubscribe_stops_delivery(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            publisher, subscriber = await bus.bus(), await bus.bus()
            subject = bus.subject("event", "app", "n1")
            first: list[bytes] = []
            marker: list[bytes] = []
            sub: BusSubscription = await subscriber.subscribe(
                subject, lambda m: first.append(m.data)
            )
            await subscriber.subscribe(subject, lambda m: marker.append(m.data))
            assert sub.subject == subject
            await publisher.publish(subject, b"1")
            await until(lambda: first == [b"1"] and marker == [b"1"])
            await sub.unsubscribe()
            await sub.unsubscribe()  # idempotent
            await publisher.publish(subject, b"2")
            await until(lambda: marker == [b"1", b"2"])
            assert first == [b"1"]

    # --- handlers ------------------------------------------------------------------------------

    async def test_handler_exceptions_do_not_end_a_subscription(
        self, bus: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with asyncio.timeout(20):
            publisher, subscriber = await bus.bus(), await bus.bus()
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

            await subscriber.subscribe(bus.subject("event", "p"), plain_handler)
            await subscriber.subscribe(bus.subject("event", "c"), coro_handler)
            for data in (b"boom", b"after"):
                await publisher.publish(bus.subject("event", "p"), data)
                await publisher.publish(bus.subject("event", "c"), data)
            await until(lambda: plain == coro == [b"boom", b"after"])
            await until(lambda: len([r for r in caplog.records if r.exc_info]) >= 2)
            failures = [r.getMessage() for r in caplog.records if r.exc_info]
            assert f"bus handler for subject {bus.subject('event', 'p')} failed" in failures
            assert f"bus handler for subject {bus.subject('event', 'c')} failed" in failures

    async def test_handlers_in_flight_are_bounded(
        self, bus: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with asyncio.timeout(20):
            publisher = await bus.bus()
            subscriber = await bus.bus(max_inflight=2)
            release = asyncio.Event()
            started: list[bytes] = []
            finished: list[bytes] = []

            async def slow(message: BusMessage) -> None:
                started.append(message.data)
                await release.wait()
                finished.append(message.data)

            await subscriber.subscribe(bus.subject("event", "slow"), slow)
            for i in range(10):
                await publisher.publish(bus.subject("event", "slow"), str(i).encode())
            await until(lambda: subscriber.dropped == 8)
            assert started == [b"0", b"1"]
            assert any("dropped 1 message(s)" in r.getMessage() for r in caplog.records)
            release.set()
            await until(lambda: len(finished) == 2)
            await publisher.publish(bus.subject("event", "slow"), b"later")
            await until(lambda: started[-1:] == [b"later"])

    @pytest.mark.parametrize("shape", ["partial", "returns a coroutine"])
    async def test_handlers_that_return_coroutines_count_against_the_bound(
        self, bus: Harness, shape: str
    ) -> None:
        async with asyncio.timeout(20):
            publisher = await bus.bus()
            subscriber = await bus.bus(max_inflight=1)
            gate = asyncio.Event()
            calls: list[str] = []

            async def waits(tag: str, message: BusMessage) -> None:
                calls.append(tag)
                await gate.wait()

            def plain(message: BusMessage) -> Awaitable[None]:
                return waits("p", message)

            handler = functools.partial(waits, "p") if shape == "partial" else plain
            await subscriber.subscribe(bus.subject("event", "bounded"), handler)
            for _ in range(3):
                await publisher.publish(bus.subject("event", "bounded"), b"")
            await until(lambda: subscriber.dropped == 2)
            assert calls == ["p"]
            gate.set()

    # --- subjects and sizes ----------------------------------------------------------------------

    async def test_invalid_subjects_are_refused(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            transport = await bus.bus()
            wildcards = (bus.subject("event", "*"), bus.subject("event", ">"))
            for bad in ("", "a b", "a..b", "a.", *wildcards, "a\r\nPUB x"):
                with pytest.raises(ProtocolError):
                    await transport.publish(bad, b"")
                with pytest.raises(ProtocolError):
                    await transport.request(bad, b"", timeout=0.1)
            for bad in ("a.>.b", "a.b*", "a..b", "a b", ""):
                with pytest.raises(ProtocolError):
                    await transport.subscribe(bad, print)
            with pytest.raises(ProtocolError):
                await transport.serve(bus.subject("create", "app"), print, group="a group")

    async def test_payload_limit(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            publisher, subscriber = await bus.bus(), await bus.bus()
            subject = bus.subject("event", "app", "big")
            got: list[bytes] = []
            await subscriber.subscribe(subject, lambda m: got.append(m.data))
            limit = publisher.max_payload
            if limit is None:
                # No limit the transport knows of: a large message goes through.
                large = b"x" * (512 * 1024)
                await publisher.publish(subject, large)
                await until(lambda: got == [large])
                return
            assert limit > 0
            too_big = b"x" * (limit + 1)
            with pytest.raises(TransportError, match="max_payload"):
                await publisher.publish(subject, too_big)
            with pytest.raises(TransportError, match="max_payload"):
                await publisher.request(bus.subject("get", "app"), too_big, timeout=1)
            with pytest.raises(TransportError, match="max_payload"):
                await publisher.gather(bus.subject("get", "app"), too_big, timeout=1, enough=bool)
            just = b"x" * limit
            await publisher.publish(subject, just)  # still works, and at the limit
            await until(lambda: bool(got))
            assert got == [just]

    # --- closing -------------------------------------------------------------------------------

    async def test_close_drains_handlers_and_fails_pending_requests(self, bus: Harness) -> None:
        """`close()` waits for running handlers (their replies still go out), is idempotent,
        refuses later use, and fails the requests and gathers still pending, promptly."""
        async with asyncio.timeout(30):
            server, client = await bus.bus(), await bus.bus()
            states: list[BusState] = []
            server.on_state(states.append)
            entered, release = asyncio.Event(), asyncio.Event()

            async def slow_answer(message: BusMessage) -> None:
                entered.set()
                await release.wait()
                await server.reply(message, b"late but delivered")

            await server.serve(bus.subject("get", "app", "slow"), slow_answer)
            answered = asyncio.ensure_future(
                client.request(bus.subject("get", "app", "slow"), b"", timeout=10)
            )
            await entered.wait()
            closing = asyncio.ensure_future(server.close())
            done, _ = await asyncio.wait([closing], timeout=0.2)
            assert not done, "close() returned while a handler was still running"
            release.set()
            await closing
            assert await answered == b"late but delivered"
            assert server.state is BusState.CLOSED and states == [BusState.CLOSED]
            await server.close()  # idempotent
            with pytest.raises(ClientClosedError):
                await server.publish(bus.subject("event", "app", "x"), b"")
            with pytest.raises(ClientClosedError):
                await server.subscribe(bus.subject("event", "app", "x"), print)

            arrived: list[BusMessage] = []
            await client.serve(bus.subject("get", "app", "never"), arrived.append)
            pending = asyncio.ensure_future(
                client.request(bus.subject("get", "app", "never"), b"", timeout=20)
            )
            gathering = asyncio.ensure_future(
                client.gather(bus.subject("get", "app", "never"), b"", timeout=20, enough=bool)
            )
            await until(lambda: len(arrived) == 2)
            started = time.monotonic()
            await client.close()
            with pytest.raises(ClientClosedError):
                await pending
            with pytest.raises(ClientClosedError):
                await gathering
            assert time.monotonic() - started < 2
            with pytest.raises(ClientClosedError):
                await client.request(bus.subject("get", "app", "never"), b"", timeout=1)

    async def test_a_handler_may_close_its_own_transport(self, bus: Harness) -> None:
        async with asyncio.timeout(20):
            publisher = await bus.bus()
            transport = await bus.bus(drain_timeout=5)

            async def close_self(message: BusMessage) -> None:
                await transport.close()

            await transport.subscribe(bus.subject("event", "bye"), close_self)
            started = time.monotonic()
            await publisher.publish(bus.subject("event", "bye"), b"")
            await until(lambda: transport.state is BusState.CLOSED, 4)  # not after drain_timeout
            assert time.monotonic() - started < 4
