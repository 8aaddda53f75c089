"""The RabbitMQ transport's fast paths: hand-made publish frames, batched event writes, batched
acks. Each is checked against what it replaces (pamqp's bytes, one ack per delivery) and on a
real broker under bursts: same order, same wire properties as Go, nothing lost, nothing run
twice."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiormq
import aiormq.abc
import pamqp.frame
import pytest
from aiormq.abc import ChannelFrame
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.header import ContentHeader
from yarl import URL

from ari_proxy._backoff import Backoff
from ari_proxy._exceptions import ProtocolError
from ari_proxy.bus import BusMessage
from ari_proxy.bus._rabbitmq import RabbitTransport
from ari_proxy.bus._rabbitmq_acks import Settler
from ari_proxy.bus._rabbitmq_frames import (
    encode_properties,
    publish_frames,
    reply_properties,
    request_properties,
)
from ari_proxy.bus._rabbitmq_link import _WriteQueue

Make = Callable[..., Awaitable[RabbitTransport]]

EVENT_PROPERTIES = Basic.Properties(content_type="application/json", delivery_mode=1)

# --- sans-I/O: frames and settling --------------------------------------------------------------


def _pamqp_publish(
    channel: int,
    exchange: str,
    key: str,
    body: bytes,
    properties: Basic.Properties,
    frame_max: int,
    *,
    mandatory: bool = False,
) -> bytes:
    """The frames aiormq's `basic_publish` writes for the same publish (built with pamqp)."""
    frames: list[Any] = [
        Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory),
        ContentHeader(0, len(body), properties),
    ]
    size = frame_max - 8
    frames += [ContentBody(body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(pamqp.frame.marshal(frame, channel) for frame in frames)


@pytest.mark.parametrize(
    ("key", "body", "frame_max"),
    [
        ("ari.event.app.02:42:ac:11:00:02", b'{"type":"StasisStart"}', 131072),
        ("ari.dialogevent.d1", b"", 131072),  # no body frame at all
        ("ari.event.app.n1", b"x" * (4096 - 8), 4096),  # exactly one full frame
        ("ari.event.app.n1", b"x" * (4096 - 7), 4096),  # one byte over: two frames
        ("ari.event.app.n1", bytes(range(256)) * 1000, 4096),  # many frames
        ("ari.event.äpp.n1", "é".encode() * 100, 131072),  # UTF-8 in the routing key
        ("k" * 255, b"{}", 131072),  # the longest routing key AMQP allows
    ],
)
def test_publish_frames_are_the_bytes_pamqp_writes(key: str, body: bytes, frame_max: int) -> None:
    for properties in (
        EVENT_PROPERTIES,
        Basic.Properties(content_type="application/json", correlation_id="x-cr", expiration="5"),
    ):
        for mandatory in (False, True):
            ours = publish_frames(
                7,
                exchange="ari.event",
                routing_key=key,
                body=body,
                properties=encode_properties(properties),
                frame_max=frame_max,
                mandatory=mandatory,
            )
            expected = _pamqp_publish(
                7, "ari.event", key, body, properties, frame_max, mandatory=mandatory
            )
            assert ours == expected


@pytest.mark.parametrize("correlation_id", ["", "cr-01JEXAMPLE", "é" * 127, "c" * 255])
def test_reply_properties_are_the_bytes_pamqp_writes(correlation_id: str) -> None:
    properties = Basic.Properties(
        content_type="application/json", delivery_mode=1, correlation_id=correlation_id or None
    )
    assert reply_properties(correlation_id) == encode_properties(properties)


@pytest.mark.parametrize(
    ("correlation_id", "expiration"),
    [("cr-01JEXAMPLE", "5000"), ("é" * 127, "1"), ("c" * 255, "9")],
)
def test_request_properties_are_the_bytes_pamqp_writes(
    correlation_id: str, expiration: str
) -> None:
    properties = Basic.Properties(
        content_type="application/json",
        correlation_id=correlation_id,
        reply_to="amq.rabbitmq.reply-to",
        expiration=expiration,
    )
    ours = request_properties(correlation_id, "amq.rabbitmq.reply-to", expiration)
    assert ours == encode_properties(properties)


def test_reply_properties_refuse_what_amqp_cannot_carry() -> None:
    with pytest.raises(ValueError, match="correlation id longer than 255 bytes"):
        reply_properties("c" * 256)


def test_publish_frames_refuse_what_amqp_cannot_carry() -> None:
    with pytest.raises(ValueError, match="routing key longer than 255 bytes"):
        publish_frames(
            1, exchange="", routing_key="k" * 256, body=b"", properties=b"", frame_max=4096
        )


async def test_the_write_queue_hands_the_writer_one_item_per_turn() -> None:
    """What was queued before the writer takes is one write, in order; every drain future is
    set once it was written; a connection-closing item is never joined but follows in order;
    the writer's `task_done` per take matches what was taken."""
    queue = _WriteQueue(16)
    loop = asyncio.get_running_loop()
    drains = [loop.create_future(), loop.create_future()]
    for payload, drain in ((b"a", drains[0]), (b"b", None), (b"c", drains[1])):
        queue.put_nowait(ChannelFrame(payload=payload, should_close=False, drain_future=drain))
    queue.put_nowait(ChannelFrame(payload=b"close", should_close=True))
    queue.put_nowait(ChannelFrame(payload=b"d", should_close=False))
    taken = []
    for _ in range(3):
        item = await queue.get()
        queue.task_done()
        taken.append((item.payload, item.should_close))
        if item.should_drain:
            item.drain()
    assert taken == [(b"abc", False), (b"close", True), (b"d", False)]
    assert all(drain.done() for drain in drains)
    assert queue.empty()
    await asyncio.wait_for(queue.join(), 1)  # as many done as put


class _RecordingChannel:
    """What a Settler calls on a channel, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bool]] = []

    async def basic_ack(self, tag: int, multiple: bool = False, wait: bool = True) -> None:
        assert not wait
        self.sent.append(("ack", tag, multiple))

    async def basic_reject(self, tag: int, *, requeue: bool = True, wait: bool = True) -> None:
        assert not wait
        self.sent.append(("reject", tag, requeue))


async def test_settler_sends_one_ack_per_turn_and_never_covers_a_reject() -> None:
    channel = _RecordingChannel()
    settler = Settler(channel)  # type: ignore[arg-type]
    for tag in range(1, 101):
        settler.ack(tag)
    await settler.flush()
    assert channel.sent == [("ack", 100, True)]  # a hundred deliveries, one frame

    channel.sent.clear()
    settler.ack(101)
    settler.ack(102)
    settler.reject(103, requeue=True)
    settler.ack(104)
    settler.reject(105, requeue=False)
    await settler.flush()
    # The multiple ack before a reject stops below it; the reject goes out before any later
    # ack, so a multiple ack never acks a delivery that was to go back to its queue.
    assert channel.sent == [
        ("ack", 102, True),
        ("reject", 103, True),
        ("ack", 104, True),
        ("reject", 105, False),
    ]

    channel.sent.clear()
    await settler.flush()  # nothing pending: nothing sent
    assert channel.sent == []


# --- against the broker ---------------------------------------------------------------------------


async def _rabbitmqctl(*args: str) -> Any:
    json_output = args[0].startswith("list_")
    command = ["rabbitmqctl", "-q", *args, *(["--formatter", "json"] if json_output else [])]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {err.decode()}")
    return json.loads(out) if json_output else out.decode()


@pytest.fixture(scope="module")
async def vhost(rabbitmq_url: str) -> AsyncIterator[str]:
    """A virtual host of this module's own."""
    name = "ari-proxy-test-" + secrets.token_hex(4)
    await _rabbitmqctl("add_vhost", name)
    await _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    await _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def url(rabbitmq_url: str, vhost: str) -> str:
    return str(URL(rabbitmq_url).with_path("/" + vhost))


@pytest.fixture
async def make(url: str) -> AsyncIterator[Make]:
    """`await make(**options)`: a connected transport on the module's vhost, closed after."""
    made: list[RabbitTransport] = []

    async def new(**options: Any) -> RabbitTransport:
        options.setdefault("backoff", Backoff(initial=0.05, maximum=0.5))
        transport = RabbitTransport(url, **options)
        made.append(transport)
        await transport.connect()
        return transport

    yield new
    for transport in made:
        await transport.close()


@pytest.fixture
def app() -> str:
    return "a" + secrets.token_hex(4)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        # Polling on purpose: the conditions are plain expressions over test state.
        while not predicate():
            await asyncio.sleep(0.005)


async def test_an_event_burst_arrives_in_order_as_go_publishes_events(
    make: Make, url: str, app: str
) -> None:
    """5,000 events published at once go out in batches; a Go-style consumer (raw aiormq, its
    own queue) gets every one, in order, with exactly Go's properties, and a body larger than
    a frame arrives whole."""
    async with asyncio.timeout(60):
        server = await make()
        got: list[aiormq.abc.DeliveredMessage] = []
        async with aiormq.connect(url) as conn:
            channel = await conn.channel()
            declared = await channel.queue_declare(exclusive=True)
            assert declared.queue is not None
            await channel.queue_bind(declared.queue, "ari.event", routing_key=f"ari.event.{app}.#")

            async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
                got.append(message)

            await channel.basic_consume(declared.queue, on_message, no_ack=True)
            large = b'{"pad":"' + b"x" * 300_000 + b'"}'  # over frame_max (128 KiB)
            bodies = [str(i).encode() for i in range(5000)] + [large]
            started = time.monotonic()
            for body in bodies:
                await server.publish(f"ari.event.{app}.n1", body)
            await until(lambda: len(got) == len(bodies), timeout=30)
            elapsed = time.monotonic() - started
        assert [m.body for m in got] == bodies
        assert server.dropped_events == 0
        for message in (got[0], got[-1]):
            props = message.header.properties
            assert message.exchange == "ari.event"
            assert message.routing_key == f"ari.event.{app}.n1"
            assert props.content_type == "application/json"
            assert props.delivery_mode == 1
            assert props.headers is None and props.correlation_id is None
            assert props.message_id is None and props.priority is None
        assert elapsed < 20, elapsed


async def test_batched_acks_leave_nothing_unacked(make: Make, vhost: str, app: str) -> None:
    """A burst of requests on the private queue and on a shared create queue: every delivery
    ends up acked (one `basic.ack` covers many), none is delivered twice."""
    async with asyncio.timeout(60):
        server, client = await make(), await make()
        seen: list[bytes] = []

        async def answer(message: BusMessage) -> None:
            seen.append(message.data)
            await server.reply(message, message.data)

        await server.serve(f"ari.get.{app}.n1", answer)
        await server.serve(f"ari.create.{app}", answer, group="ariproxy")
        bodies = [str(i).encode() for i in range(600)]
        replies = await asyncio.gather(
            *(
                client.request(
                    f"ari.get.{app}.n1" if i % 2 else f"ari.create.{app}", body, timeout=20
                )
                for i, body in enumerate(bodies)
            )
        )
        assert replies == bodies
        assert Counter(seen) == Counter(bodies)

        async def unsettled() -> int:
            queues = await _rabbitmqctl(
                "list_queues", "-p", vhost, "name", "messages_unacknowledged", "messages_ready"
            )
            return sum(q["messages_unacknowledged"] + q["messages_ready"] for q in queues)

        async with asyncio.timeout(10):
            while await unsettled():
                await asyncio.sleep(0.2)


async def test_only_shared_queues_are_consumed_with_acks(make: Make, vhost: str, app: str) -> None:
    """The private serve queue and the private event queue are consumed without acks (nobody
    else could take over a delivery, and one handed back after a reconnect may be a request its
    requester gave up on); shared queues (creates, `listen()` groups) keep acks and the
    prefetch, so that what one member never started goes to another."""
    async with asyncio.timeout(30):
        server = await make()

        async def ignore(message: BusMessage) -> None:
            pass

        await server.serve(f"ari.get.{app}.n1", ignore)
        await server.serve(f"ari.create.{app}", ignore, group="ariproxy")
        await server.subscribe(f"ari.event.{app}.>", ignore)
        await server.subscribe(f"ari.event.{app}.>", ignore, group=app)
        consumers = await _rabbitmqctl(
            "list_consumers", "-p", vhost, "queue_name", "ack_required", "prefetch_count"
        )
        acks = {c["queue_name"]: (c["ack_required"], c["prefetch_count"]) for c in consumers}
        shared = {name: acked for name, acked in acks.items() if app in name}
        assert shared == {
            f"ariproxy-ari.create.{app}": (True, 256),
            f"ari-proxy-listen.{app}.ari.event.{app}.+.#": (True, 256),
        }, acks
        private = {name: acked for name, acked in acks.items() if app not in name}
        assert sorted(ack for ack, _ in private.values()) == [False, False], acks


async def test_a_member_closing_mid_burst_hands_its_unhandled_requests_on_once(
    make: Make, app: str
) -> None:
    """Two servers share a create queue; one closes in the middle of a burst. Requests it ran
    were acked before its connection closed (so none is run again by the other), and those it
    had received but not run go back to the queue and are run by the other: each exactly once."""
    async with asyncio.timeout(60):
        client = await make()
        subject = f"ari.create.{app}"
        ran: list[tuple[int, bytes]] = []
        members = [await make(), await make()]
        for index, member in enumerate(members):

            async def answer(
                message: BusMessage, member: RabbitTransport = member, index: int = index
            ) -> None:
                ran.append((index, message.data))
                await asyncio.sleep(0.001)
                await member.reply(message, message.data)

            await member.serve(subject, answer, group="ariproxy")
        bodies = [str(i).encode() for i in range(2000)]
        requests = [
            asyncio.ensure_future(client.request(subject, body, timeout=30)) for body in bodies
        ]
        await until(lambda: len(ran) >= 300)
        await members[0].close()
        results = await asyncio.gather(*requests, return_exceptions=True)
        runs = Counter(data for _, data in ran)
        assert all(count == 1 for count in runs.values()), runs.most_common(3)
        assert {index for index, _ in ran} == {0, 1}
        assert set(runs) == set(bodies)
        # The closing member let its running handlers reply before it closed.
        assert results == bodies


async def test_the_serve_queue_routes_by_subject_as_subscriptions_come_and_go(
    make: Make, app: str
) -> None:
    """The private serve queue dispatches each request to the subscriptions whose subject
    matches it, worked out once per subject: a subscription added or removed later changes
    who gets the next request."""
    async with asyncio.timeout(20):
        server, client = await make(), await make()
        got: list[str] = []

        def handler(name: str) -> Callable[[BusMessage], Awaitable[None]]:
            async def answer(message: BusMessage) -> None:
                got.append(name)
                if name == "wildcard":  # one answer per request is enough
                    await server.reply(message, b"ok")

            return answer

        subject = f"ari.get.{app}.n1"
        await server.serve(f"ari.get.{app}.*", handler("wildcard"))
        exact = await server.serve(subject, handler("exact"))
        assert await client.request(subject, b"", timeout=5) == b"ok"
        await until(lambda: sorted(got) == ["exact", "wildcard"])
        await exact.unsubscribe()
        got.clear()
        assert await client.request(subject, b"", timeout=5) == b"ok"
        # The first request's handlers all started before the second request was dispatched.
        assert await client.request(subject, b"", timeout=5) == b"ok"
        assert got[:1] == ["wildcard"] and "exact" not in got
        await until(lambda: got == ["wildcard", "wildcard"])
        await server.serve(subject, handler("late"))
        got.clear()
        assert await client.request(subject, b"", timeout=5) == b"ok"
        await until(lambda: sorted(got) == ["late", "wildcard"])


async def test_events_published_just_before_close_still_go_out(
    make: Make, url: str, app: str
) -> None:
    """`close()` waits for the outbox, including the batch being written, before it closes the
    connection (which would drop frames still queued for the socket)."""
    async with asyncio.timeout(30):
        got: list[bytes] = []
        async with aiormq.connect(url) as conn:
            channel = await conn.channel()
            declared = await channel.queue_declare(exclusive=True)
            assert declared.queue is not None
            await channel.queue_bind(declared.queue, "ari.event", routing_key=f"ari.event.{app}.#")

            async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
                got.append(message.body)

            await channel.basic_consume(declared.queue, on_message, no_ack=True)
            server = await make()
            bodies = [str(i).encode() * 100 for i in range(3000)]
            for body in bodies:
                await server.publish(f"ari.event.{app}.n1", body)
            await server.close()
            await until(lambda: len(got) == len(bodies))
        assert got == bodies


async def test_a_subject_too_long_for_a_routing_key_is_refused_at_publish(
    make: Make, app: str
) -> None:
    """Refused when published, not later in the outbox (where it used to end the pump, and
    with it every later event)."""
    async with asyncio.timeout(15):
        server, client = await make(), await make()
        got: list[bytes] = []
        await client.subscribe(f"ari.event.{app}.>", lambda message: got.append(message.data))
        with pytest.raises(ProtocolError, match="at most 255 bytes"):
            await server.publish(f"ari.event.{app}." + "n" * 250, b"too long")
        await server.publish(f"ari.event.{app}.n1", b"after")
        await until(lambda: got == [b"after"])
