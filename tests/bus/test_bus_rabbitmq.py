"""The RabbitMQ transport against a real broker, and against peers that behave like Go v5.

The transport contract runs on it (`TestRabbitTransport`, through `bus.connect`); the rest is
RabbitMQ only: wire properties, Go peers, channels, `#` bindings, queues on the broker, errors,
cuts and broker-side deletions. Every test of this module runs in one throwaway virtual host
(created with rabbitmqctl, deleted at the end), and uses an application name (or, in the
contract, a subject prefix) of its own, so tests never see each other's messages. "Go-style"
peers are written with raw aiormq, doing exactly what docs/protocol.md, "Subjects" says the Go v5
server and client do (no correlation id echoed, `<ulid>-q` queues, ...), and their wire properties
are compared with the recorded Go traffic (vectors item 14).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiormq
import aiormq.abc
import aiormq.exceptions
import pamqp.exceptions
import pytest
from bus_contract import NewTransport, TransportContract
from pamqp.commands import Basic
from yarl import URL

from ari_proxy._backoff import Backoff
from ari_proxy._exceptions import (
    AuthenticationError,
    ConnectError,
    NoProxyError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)
from ari_proxy.bus import BusMessage, BusState, connect
from ari_proxy.bus._rabbitmq import RabbitTransport
from ari_proxy.bus._rabbitmq_errors import _MAP, redact_text, translate
from ari_proxy.protocol import new_id
from ari_proxy.testing._tcpproxy import TcpProxy

VECTORS = Path(os.environ["ARI_PROXY_VECTORS"])

Make = Callable[..., Awaitable[RabbitTransport]]

# --- broker helpers -----------------------------------------------------------------------------


async def rabbitmqctl(*args: str) -> Any:
    """Run rabbitmqctl (without blocking the loop); JSON for the `list_*` commands."""
    json_output = args[0].startswith("list_")
    command = ["rabbitmqctl", "-q", *args, *(["--formatter", "json"] if json_output else [])]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {err.decode()}")
    return json.loads(out) if json_output else out.decode()


async def queue_names(vhost: str) -> set[str]:
    return {q["name"] for q in await rabbitmqctl("list_queues", "-p", vhost, "name")}


@pytest.fixture(scope="module")
async def vhost(rabbitmq_url: str) -> AsyncIterator[str]:
    """The name of a virtual host of this module's own."""
    name = "ari-proxy-test-" + secrets.token_hex(4)
    await rabbitmqctl("add_vhost", name)
    await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    await rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def url(rabbitmq_url: str, vhost: str) -> str:
    """The AMQP URL of the module's virtual host."""
    return str(URL(rabbitmq_url).with_path("/" + vhost))


@pytest.fixture
async def make(url: str) -> AsyncIterator[Make]:
    """`await make(**options)`: a connected transport on the module's vhost, closed after."""
    made: list[RabbitTransport] = []

    async def new(
        target: str | None = None, *, connect: bool = True, **options: Any
    ) -> RabbitTransport:
        options.setdefault("backoff", Backoff(initial=0.05, maximum=0.5))
        transport = RabbitTransport(target or url, **options)
        made.append(transport)
        if connect:
            await transport.connect()
        return transport

    yield new
    for transport in made:
        await transport.close()


@pytest.fixture
def app() -> str:
    """An application name no other test uses."""
    return "a" + secrets.token_hex(4)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        # Polling on purpose: the conditions are plain expressions over test state.
        while not predicate():
            await asyncio.sleep(0.005)


def go_vectors(role: str) -> list[dict[str, Any]]:
    with (VECTORS / "go-v5-rabbitmq.jsonl").open() as lines:
        return [r for r in map(json.loads, lines) if r["role"] == role]


class TestRabbitTransport(TransportContract):
    """The transport contract, on the module's virtual host."""

    @pytest.fixture
    def new_transport(self, url: str) -> NewTransport:
        def new(**options: Any) -> RabbitTransport:
            transport = connect(url, **{"backoff": Backoff(initial=0.05, maximum=0.5), **options})
            assert isinstance(transport, RabbitTransport)
            return transport

        return new


# --- Go-style peers (raw aiormq, docs/protocol.md, "Subjects")
# ----------------------------------------------


class GoServer:
    """A server that behaves like Go v5's: one `<ulid>-q` queue (durable, `x-expires` 30 s)
    bound to `ari.request` with its subjects, acked on receipt, and replies on the default
    exchange carrying only content_type and delivery_mode (no correlation id)."""

    def __init__(self, url: str, subjects: list[str], *, delays: list[float] | None = None):
        self.url = url
        self.subjects = subjects
        self.delays = delays or []
        self.requests: list[aiormq.abc.DeliveredMessage] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> GoServer:
        self.conn = await aiormq.connect(self.url)
        self.channel = await self.conn.channel(publisher_confirms=False)
        await self.channel.exchange_declare("ari.request", exchange_type="topic", durable=True)
        queue = new_id("q")
        await self.channel.queue_declare(queue, durable=True, arguments={"x-expires": 30000})
        for subject in self.subjects:
            await self.channel.queue_bind(queue, "ari.request", routing_key=subject)
        await self.channel.basic_consume(queue, self._on_request, consumer_tag=new_id("co"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await self.conn.close()

    async def _on_request(self, message: aiormq.abc.DeliveredMessage) -> None:
        assert message.delivery_tag is not None
        await self.channel.basic_ack(message.delivery_tag)
        self.requests.append(message)
        delay = self.delays[len(self.requests) - 1] if len(self.requests) <= len(self.delays) else 0
        task = asyncio.get_running_loop().create_task(self._answer(message, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: aiormq.abc.DeliveredMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        reply_to = message.header.properties.reply_to
        assert reply_to
        await self.channel.basic_publish(
            b"go:" + message.body,
            exchange="",
            routing_key=reply_to,
            properties=Basic.Properties(content_type="application/json", delivery_mode=1),
        )


async def go_client_request(url: str, subject: str, body: bytes) -> aiormq.abc.DeliveredMessage:
    """A request as the Go v5 client sends it: a channel of its own consuming direct reply-to,
    content_type, correlation_id `<ulid>-cr` and reply_to, nothing else; the reply message."""
    async with aiormq.connect(url) as conn:
        channel = await conn.channel(publisher_confirms=False)
        reply: asyncio.Future[aiormq.abc.DeliveredMessage] = (
            asyncio.get_running_loop().create_future()
        )

        async def on_reply(message: aiormq.abc.DeliveredMessage) -> None:
            if not reply.done():
                reply.set_result(message)

        await channel.basic_consume(
            "amq.rabbitmq.reply-to", on_reply, no_ack=True, consumer_tag=new_id("rp")
        )
        await channel.basic_publish(
            body,
            exchange="ari.request",
            routing_key=subject,
            properties=Basic.Properties(
                content_type="application/json",
                correlation_id=new_id("cr"),
                reply_to="amq.rabbitmq.reply-to",
            ),
        )
        return await asyncio.wait_for(reply, 5)


# --- requests -----------------------------------------------------------------------------------


async def test_request_reply_with_correlation_id(make: Make, app: str) -> None:
    async with asyncio.timeout(15):
        server, client = await make(), await make()
        seen: list[BusMessage] = []

        async def answer(message: BusMessage) -> None:
            seen.append(message)
            await server.reply(message, b"re:" + message.data)

        subject = f"ari.get.{app}.n1"
        await server.serve(subject, answer)
        assert await client.request(subject, b"one", timeout=3) == b"re:one"
        assert await client.request(subject, b"two", timeout=3) == b"re:two"
        first, second = seen
        assert first.subject == subject
        assert first.correlation_id.endswith("-cr") and len(first.correlation_id) == 29
        assert first.correlation_id != second.correlation_id
        assert first.reply.startswith("amq.rabbitmq.reply-to.")


async def test_go_client_against_our_server(make: Make, url: str, app: str) -> None:
    async with asyncio.timeout(15):
        server = await make()

        async def answer(message: BusMessage) -> None:
            await server.reply(message, b'{"error":""}')

        await server.serve(f"ari.data.{app}", answer)
        reply = await go_client_request(url, f"ari.data.{app}", b'{"kind":"AsteriskInfo"}')
        assert reply.body == b'{"error":""}'
        props = reply.header.properties
        go_reply = go_vectors("reply")[0]["amqp"]
        # What Go sets on a reply (vectors item 14): content_type and delivery_mode only ...
        assert props.content_type == go_reply["content_type"] == "application/json"
        assert props.delivery_mode == go_reply["delivery_mode"] == 1
        assert props.headers is None and go_reply["headers"] is None
        assert props.priority is None and props.expiration is None
        # ... and the correlation id, which we echo and Go does not.
        assert go_reply["correlation_id"] is None
        assert props.correlation_id is not None and props.correlation_id.endswith("-cr")


async def test_request_against_a_go_server_that_does_not_echo(
    make: Make, url: str, app: str
) -> None:
    async with asyncio.timeout(15):
        client = await make()
        subject = f"ari.command.{app}.n1"
        async with GoServer(url, [subject]) as go:
            assert await client.request(subject, b"1", timeout=3) == b"go:1"
            assert await client.request(subject, b"2", timeout=3) == b"go:2"
            # Properties as the Go server receives them, against the recorded Go request.
            go_request = go_vectors("request")[0]
            props = go.requests[0].header.properties
            assert props.content_type == go_request["amqp"]["content_type"]
            assert props.correlation_id is not None and props.correlation_id.endswith("-cr")
            assert props.reply_to is not None
            assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
            assert go_request["amqp_delivered"]["reply_to"].startswith("amq.rabbitmq.reply-to.")
            assert props.delivery_mode is None and go_request["amqp"]["delivery_mode"] is None
            assert props.headers is None and go_request["amqp"]["headers"] is None
            assert props.priority is None
            assert props.expiration == "3000"  # the request timeout: Go defect 35 fixed here


async def test_late_reply_is_never_taken_for_the_next_request(
    make: Make, url: str, app: str
) -> None:
    async with asyncio.timeout(15):
        # One reply channel, reused; the Go-style server answers the first request late and
        # without a correlation id, while the second is still waiting for its own answer: only
        # the channel's new reply-to key keeps the late reply away from the second request.
        client = await make(request_channels=1)
        subject = f"ari.get.{app}.n1"
        async with GoServer(url, [subject], delays=[0.5, 0.6]) as go:
            with pytest.raises(RequestTimeout):
                await client.request(subject, b"slow", timeout=0.2)
            for i in range(3):
                assert (
                    await client.request(subject, str(i).encode(), timeout=2) == f"go:{i}".encode()
                )
            assert len(go.requests) == 4
            assert client.request_channels_open == 1


async def test_unroutable_request_says_the_broker_returned_it(make: Make, app: str) -> None:
    async with asyncio.timeout(15):
        client = await make()
        with pytest.raises(NoProxyError, match="the broker returned the request: 312 NO_ROUTE"):
            await client.request(f"ari.get.{app}.nobody", b"{}", timeout=10)


async def test_many_requests_keep_the_channel_count_bounded(
    make: Make, vhost: str, app: str
) -> None:
    async with asyncio.timeout(110):
        server = await make(name=f"server-{app}")
        client = await make(name=f"client-{app}", request_channels=4)

        async def answer(message: BusMessage) -> None:
            await server.reply(message, message.data)

        subject = f"ari.get.{app}.n1"
        await server.serve(subject, answer)
        started = time.monotonic()
        for i in range(10_000):
            data = str(i).encode()
            assert await client.request(subject, data, timeout=5) == data
        elapsed = time.monotonic() - started
        # A burst far above the pool size waits for channels instead of opening more.
        burst = await asyncio.gather(
            *(client.request(subject, str(i).encode(), timeout=20) for i in range(500))
        )
        assert burst == [str(i).encode() for i in range(500)]
        assert client.request_channels_open <= 4
        connections = await rabbitmqctl(
            "list_connections", "-p", vhost, "channels", "client_properties"
        )
        counts = {
            {k: v for k, _, v in c["client_properties"]}.get("connection_name"): c["channels"]
            for c in connections
        }
        # 5 fixed channels (topology, consume, confirm, events, replies) + at most 4 reply
        # channels of requests.
        assert counts[f"client-{app}"] <= 5 + 4, counts
        assert counts[f"server-{app}"] == 5, counts
        logging.getLogger(__name__).info(
            "10,000 sequential requests in %.1f s (%.2f ms each); client channels: %d",
            elapsed,
            elapsed / 10,
            counts[f"client-{app}"],
        )


# --- events, listen groups, announcements, pings ------------------------------------------------


async def test_event_wildcards(make: Make, app: str) -> None:
    async with asyncio.timeout(15):
        server, client = await make(), await make()
        tail: list[str] = []
        hash_tail: list[str] = []
        one: list[str] = []
        exact: list[str] = []
        dialog: list[str] = []
        await client.subscribe(f"ari.event.{app}.>", lambda m: tail.append(m.subject))
        await client.subscribe(f"ari.event.{app}.#", lambda m: hash_tail.append(m.subject))
        await client.subscribe(f"ari.event.{app}.*.x", lambda m: one.append(m.subject))
        await client.subscribe(f"ari.event.{app}.n1", lambda m: exact.append(m.subject))
        await client.subscribe(f"ari.dialogevent.d-{app}", lambda m: dialog.append(m.subject))
        for subject in (f"{app}.n1", f"{app}.n2", f"{app}", f"{app}.n1.x", f"other{app}.n1"):
            await server.publish(f"ari.event.{subject}", b"{}")
        await server.publish(f"ari.dialogevent.d-{app}", b"{}")
        await server.publish(f"ari.event.{app}.end", b"{}")
        await until(lambda: tail[-1:] == hash_tail[-1:] == [f"ari.event.{app}.end"])
        await until(lambda: bool(dialog))
        assert tail == [f"ari.event.{app}.{s}" for s in ("n1", "n2", "n1.x", "end")]
        # `#` keeps RabbitMQ's meaning (zero or more tokens), as Go's subscriptions use it.
        assert hash_tail == [f"ari.event.{app}{s}" for s in (".n1", ".n2", "", ".n1.x", ".end")]
        assert one == [f"ari.event.{app}.n1.x"]
        assert exact == [f"ari.event.{app}.n1"]
        assert dialog == [f"ari.dialogevent.d-{app}"]


async def test_unsubscribe_really_stops_delivery(make: Make, vhost: str, app: str) -> None:
    async with asyncio.timeout(15):
        server, client = await make(), await make()
        first: list[bytes] = []
        marker: list[bytes] = []
        sub = await client.subscribe(f"ari.event.{app}.n1", lambda m: first.append(m.data))
        await client.subscribe(f"ari.event.{app}.n1", lambda m: marker.append(m.data))
        assert sub.subject == f"ari.event.{app}.n1"
        await server.publish(f"ari.event.{app}.n1", b"1")
        await until(lambda: first == [b"1"] and marker == [b"1"])
        queue = sub.queue_name
        assert queue.startswith("amq.gen-") and queue in await queue_names(vhost)
        await sub.unsubscribe()
        await sub.unsubscribe()  # idempotent
        await server.publish(f"ari.event.{app}.n1", b"2")
        await until(lambda: marker == [b"1", b"2"])
        assert first == [b"1"]
        # The consumer was cancelled on the broker, which took the auto-deleted queue with it.
        assert queue not in await queue_names(vhost)

        # A served subject that is unsubscribed is unbound: requests are returned at once.
        async def answer(message: BusMessage) -> None:
            await server.reply(message, b"ok")

        served = await server.serve(f"ari.get.{app}.n1", answer)
        other = await server.serve(f"ari.get.{app}", answer)
        assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"ok"
        await served.unsubscribe()
        with pytest.raises(NoProxyError):
            await client.request(f"ari.get.{app}.n1", b"", timeout=3)
        assert await client.request(f"ari.get.{app}", b"", timeout=3) == b"ok"
        await other.unsubscribe()  # the last one: the private queue is deleted
        with pytest.raises(NoProxyError):
            await client.request(f"ari.get.{app}", b"", timeout=3)


async def test_announcements_take_no_group(make: Make) -> None:
    # Announcements come through the `ari.announce` fan-out: every subscriber gets each.
    async with asyncio.timeout(15):
        client = await make()
        with pytest.raises(ProtocolError, match="no group"):
            await client.subscribe("ari.announce", print, group="g")


# --- errors -------------------------------------------------------------------------------------


def _classes(module: object) -> set[type[BaseException]]:
    return {
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    }


def test_every_backend_exception_is_mapped() -> None:
    # The transport drives aiormq and pamqp (aio-pika is not a dependency): every exception
    # class they define has its own row.
    backend = _classes(aiormq.exceptions) | _classes(pamqp.exceptions)
    missing = {cls.__qualname__ for cls in backend if cls not in _MAP}
    assert not missing, f"no explicit translation for {sorted(missing)}"
    assert len(backend) > 40  # the modules were really read


def test_translation() -> None:
    assert isinstance(translate(aiormq.exceptions.AuthenticationError("x", "y")), ConnectError)
    assert isinstance(
        translate(ConnectionRefusedError(111, "refused"), connecting=True), ConnectError
    )
    assert type(translate(ConnectionResetError(104, "reset"))) is TransportError
    assert (
        type(translate(aiormq.exceptions.ChannelPreconditionFailed("PRECONDITION_FAILED")))
        is TransportError
    )
    unexpected = translate(aiormq.exceptions.ChannelNotFoundEntity("NOT_FOUND"))
    assert type(unexpected) is TransportError and "NOT_FOUND" in str(unexpected)
    already = NoProxyError("x")
    assert translate(already) is already
    assert (
        redact_text("failed: amqp://ari:s3cret@host:5672/vh") == "failed: amqp://***@host:5672/vh"
    )


async def test_refused_credentials_are_said_at_once_and_never_shown(
    rabbitmq_url: str, vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncio.timeout(15):
        secret = "pw-" + secrets.token_hex(6)
        bad = str(URL(rabbitmq_url).with_user("guest").with_password(secret).with_path("/" + vhost))
        transport = RabbitTransport(bad, backoff=Backoff(initial=0.05, maximum=0.1))
        try:
            with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as caught:
                async with asyncio.timeout(2.0):  # not retried until a connect timeout
                    await transport.connect()
            message = str(caught.value)
            assert "refused the credentials" in message and "guest:***@" in message
            assert secret not in message and secret not in caplog.text
            assert secret not in repr(transport)
        finally:
            await transport.close()
        assert transport.state is BusState.CLOSED


# --- robustness: cuts, restores, broker-side deletions -------------------------------------------


async def _proxy_for(rabbitmq_url: str) -> TcpProxy:
    broker = URL(rabbitmq_url)
    proxy = TcpProxy(broker.host or "127.0.0.1", broker.port or 5672)
    await proxy.start()
    return proxy


def _through(proxy: TcpProxy, url: str) -> str:
    return str(URL(url).with_host(proxy.host).with_port(proxy.port))


async def test_server_reconnects_after_a_cut_and_serves_again(
    make: Make, url: str, rabbitmq_url: str, app: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncio.timeout(30):
        proxy = await _proxy_for(rabbitmq_url)
        try:
            server = await make(_through(proxy, url), publish_buffer=10)
            client = await make()  # directly on the broker: its subscriptions stay
            states: list[BusState] = []
            server.on_state(states.append)

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"pong")

            await server.serve(f"ari.get.{app}.n1", answer)
            await server.serve(f"ari.create.{app}", answer, group="ariproxy")
            announcements: list[bytes] = []
            await server.subscribe("ari.announce", lambda m: announcements.append(m.data))
            events: list[bytes] = []
            await client.subscribe(f"ari.event.{app}.>", lambda m: events.append(m.data))
            assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"

            await proxy.cut()
            await until(lambda: server.state is BusState.RECONNECTING)
            assert server.gaps == 1
            # Published while cut: buffered, the oldest dropped beyond publish_buffer.
            for i in range(25):
                await server.publish(f"ari.event.{app}.n1", str(i).encode())
            assert server.buffered_events == 10 and server.dropped_events == 15
            await asyncio.sleep(0.3)  # a few reconnect attempts fail meanwhile

            restored = time.monotonic()
            await proxy.restore()
            await until(lambda: server.state is BusState.CONNECTED, timeout=10)
            reconnect = time.monotonic() - restored
            assert states == [BusState.RECONNECTING, BusState.CONNECTED]
            # The buffered events come, in order; the dropped ones never.
            await until(lambda: len(events) == 10)
            assert events == [str(i).encode() for i in range(15, 25)]
            assert server.buffered_events == 0
            # Serving (private queue and shared create queue) and subscriptions work again.
            assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"
            assert await client.request(f"ari.create.{app}", b"", timeout=3) == b"pong"
            await client.publish("ari.announce", f'{{"application":"{app}"}}'.encode())
            await until(lambda: bool(announcements))
            logging.getLogger(__name__).info("reconnected %.3f s after the restore", reconnect)
            assert "guest:guest" not in caplog.text
        finally:
            await proxy.close()


async def test_client_reconnects_after_a_cut_and_resubscribes(
    make: Make, url: str, rabbitmq_url: str, app: str
) -> None:
    async with asyncio.timeout(30):
        proxy = await _proxy_for(rabbitmq_url)
        try:
            server = await make()
            client = await make(_through(proxy, url), request_channels=2)

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"pong")

            await server.serve(f"ari.get.{app}.n1", answer)
            events: list[bytes] = []
            listened: list[bytes] = []
            await client.subscribe(f"ari.event.{app}.>", lambda m: events.append(m.data))
            await client.subscribe(f"ari.event.{app}.>", listened.append, group=app)
            assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"

            # A request in flight when the link is cut fails at once, not at its timeout.
            muted: list[BusMessage] = []
            await server.serve(f"ari.get.{app}.mute", muted.append)
            pending = asyncio.ensure_future(client.request(f"ari.get.{app}.mute", b"", timeout=20))
            await until(lambda: bool(muted))
            await proxy.cut()
            with pytest.raises(TransportError, match="lost"):
                await pending
            await until(lambda: client.state is BusState.RECONNECTING)
            # A request made while cut waits for the reconnect, within its timeout.
            waiting = asyncio.ensure_future(client.request(f"ari.get.{app}.n1", b"", timeout=10))
            done, _ = await asyncio.wait([waiting], timeout=0.2)
            assert not done
            await proxy.restore()
            assert await waiting == b"pong"
            assert client.state is BusState.CONNECTED and client.gaps == 1
            await server.publish(f"ari.event.{app}.n1", b"after")
            await until(lambda: events == [b"after"] and len(listened) == 1)
            assert client.request_channels_open <= 2
        finally:
            await proxy.close()


async def test_a_queue_deleted_on_the_broker_is_restored(make: Make, vhost: str, app: str) -> None:
    async with asyncio.timeout(30):
        server, client = await make(), await make()

        async def answer(message: BusMessage) -> None:
            await server.reply(message, b"pong")

        sub = await server.serve(f"ari.get.{app}.n1", answer)
        assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"
        await rabbitmqctl("delete_queue", "-p", vhost, sub.queue_name)

        # The broker cancels the consumer; the transport declares, binds and consumes again.
        async def served() -> bool:
            try:
                return await client.request(f"ari.get.{app}.n1", b"", timeout=1) == b"pong"
            except (NoProxyError, RequestTimeout):
                return False

        deadline = time.monotonic() + 10
        while not await served():
            assert time.monotonic() < deadline, "the deleted queue was not restored"
            await asyncio.sleep(0.1)
        assert server.state is BusState.CONNECTED and server.gaps == 0


async def test_a_refused_declaration_does_not_break_the_transport(
    make: Make, url: str, app: str
) -> None:
    async with asyncio.timeout(15):
        server, client = await make(), await make()
        # Someone declared the shared create queue with other arguments: the broker refuses
        # ours (PRECONDITION_FAILED), which must fail this serve() and nothing else.
        async with aiormq.connect(url) as conn:
            channel = await conn.channel()
            await channel.queue_declare(
                f"ariproxy-ari.create.{app}", durable=True, arguments={"x-max-length": 5}
            )
        with pytest.raises(TransportError, match="PRECONDITION_FAILED"):
            await server.serve(f"ari.create.{app}", print, group="ariproxy")

        async def answer(message: BusMessage) -> None:
            await server.reply(message, b"pong")

        await server.serve(f"ari.get.{app}.n1", answer)
        assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"
        assert server.gaps == 0


async def test_fails_over_to_the_next_url(
    make: Make, url: str, rabbitmq_url: str, app: str
) -> None:
    async with asyncio.timeout(30):
        # Two ways to the broker, as two nodes of a cluster would be; the first is cut for good
        # after the connection, like a failed node (Go issue #60: dead subscriptions after a
        # failover).
        first, second = await _proxy_for(rabbitmq_url), await _proxy_for(rabbitmq_url)
        try:
            server = await make([_through(first, url), _through(second, url)])
            client = await make()

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"pong")

            await server.serve(f"ari.get.{app}.n1", answer)
            assert first.connections == 1 and second.connections == 0
            await first.cut()
            await until(lambda: server.state is BusState.RECONNECTING)
            await until(lambda: server.state is BusState.CONNECTED, timeout=10)
            assert second.connections == 1
            assert await client.request(f"ari.get.{app}.n1", b"", timeout=3) == b"pong"
        finally:
            await first.close()
            await second.close()
