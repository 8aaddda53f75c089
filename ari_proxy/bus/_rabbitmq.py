"""The RabbitMQ transport, wire-compatible with Go ari-proxy v5 both ways (docs/protocol.md,
"Subjects").

`RabbitTransport` puts together:

- `_rabbitmq_topology`: what goes on the wire (exchanges, routes, queue shapes), sans I/O;
- `_rabbitmq_link`: the supervised connection (reconnect forever, restore, report state);
- `_rabbitmq_subscriptions`: the registry of live subscriptions, restored on each connection;
- `_rabbitmq_outbox`: the bounded buffer events and announcements go through, written in
  batches (`_rabbitmq_frames` marshals their frames);
- `_rabbitmq_acks`: acknowledgements of consumed deliveries, one `basic.ack` per loop turn;
- `_rabbitmq_rpc`: client requests over direct reply-to, on a bounded pool of channels;
- `_rabbitmq_errors`: the one translation of backend exceptions into ours.

It drives aiormq, the AMQP layer under aio-pika, directly; aio-pika is not a dependency.
aio-pika's `Message` always writes a `headers` table and a `priority`; Go writes only
content_type, delivery_mode, correlation_id and reply_to (vectors item 14), and so do we (plus,
on pings, the `message_id` aiormq needs to match a returned message to its publish). The
per-message wrapping of aio-pika's `IncomingMessage` is also a cost we do not need. aiormq is
pinned to the versions tested (pyproject.toml): events, replies and requests write frames
through its connection's writer queue (`_rabbitmq_link.write_frames`, `send_frames`), which is
not public API, and `tests/bus/test_bus_rabbitmq_aiormq.py` fails, naming what changed, on an
aiormq that no longer fits.

Where the time of a message went, and what was done about it: the outbox writes events in
batches, one socket write per batch, their frames marshalled by hand (pamqp's generic
marshalling was most of the cost, and a write and drain per event made the outbox the
bottleneck of the event path); deliveries of shared queues are acked together
(`_rabbitmq_acks`), those of private queues not at all (`_rabbitmq_subscriptions`); replies and
requests go out unconfirmed, as Go's do, as hand-made frames queued for the socket without a
turn of the event loop (`RabbitTransport.reply`, `ReplyChannel.publish`); what is queued in one
loop turn is one socket write (`_rabbitmq_link._WriteQueue`); the consume channel and the
connection's writer have room for a prefetch's worth of frames instead of aiormq's 10.

Subjects are NATS-style (docs/protocol.md, "Subjects"). An ari-proxy subject (`<prefix><class>...`)
goes to its class's exchange whatever the method, which is what Go peers use; any other subject goes
to the exchange of the method's intent (`ari.request` for serve/request, `ari.event` for
publish/subscribe, `ari.ping` for ping). `>` binds as `*.#` (one or more tokens, as on NATS).

Wire behaviour worth knowing:

- A reply echoes the request's `correlation_id` (Go does not; it is harmless to Go clients and
  lets ours check replies).
- Every client request carries a per-message `expiration`: its timeout (or `create_ttl_ms` for
  creates). A request that sat in a queue while no server consumed it, such as the shared
  durable `ariproxy-…create` queues, which Go declares without a TTL and which therefore cannot
  get one, is dropped by the broker instead of being run minutes later (Go Go defect 35).
- Unicast requests are `mandatory`: with no queue bound for the subject the broker returns the
  request and `request()` raises `NoProxyError` at once instead of waiting out its timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import aiormq.exceptions
from pamqp.commands import Basic
from yarl import URL

from .._backoff import Backoff
from .._exceptions import ClientClosedError, ProtocolError, RequestTimeout, TransportError
from .._redact import redact_url
from ..protocol import Subjects, check_token, new_id
from ._rabbitmq_errors import amqp_errors
from ._rabbitmq_frames import publish_frames, reply_properties
from ._rabbitmq_link import Link, publish, send_frames
from ._rabbitmq_outbox import Outbox
from ._rabbitmq_rpc import ReplyPool
from ._rabbitmq_subscriptions import Kind, RabbitSubscription, Registry
from ._rabbitmq_topology import (
    EVENT_EXCHANGE,
    PING_EXCHANGE,
    REQUEST_EXCHANGE,
    Route,
    SubjectClass,
    announce_queue,
    classify,
    event_queue,
    listen_group_queue,
    ping_queue,
    route,
    serve_group_queue,
)
from ._transport import MAX_GATHER_REPLIES, BusMessage, BusState, Handler, Transport, check_subject

__all__ = ["RabbitSubscription", "RabbitTransport"]

_JSON = "application/json"
_TRANSIENT = 1
_MAX_ROUTING_KEY = 255
_MAX_ROUTES = 4096


class RabbitTransport:
    """A `Transport` over RabbitMQ (AMQP 0-9-1), interoperable with Go ari-proxy v5 peers.

    Args:
        urls: broker URLs (`amqp://` or `amqps://`; one string is accepted too), tried in turn.
            Credentials never reach the logs.
        prefix: the subject prefix (default `ari.`). The exchanges keep their constant names
            whatever it is, as Go's subscribers do (Go defect 36).
        name: the connection name the broker shows (`connection_name` client property).
        ssl_context: TLS settings for `amqps://` URLs.
        request_channels: reply channels for client requests, i.e. requests in flight at
            once; more wait for a free channel within their timeout.
        create_ttl_ms: per-message TTL of create requests; by default the request timeout,
            which every other request gets.
        publish_buffer: events and announcements kept while the broker is away; beyond, the
            oldest is dropped and counted in `dropped_events`.
        max_inflight: handler tasks per subscription; beyond, messages are dropped and counted
            in `dropped`.
        prefetch: unacknowledged deliveries per consumer. They are acked as soon as their
            handler is scheduled, so this only bounds what a stalled process holds back from
            a shared queue.
        heartbeat: AMQP heartbeat in seconds, to notice a dead link (unless the URL sets one).
        connect_timeout: bound of one connection attempt, in seconds.
        publish_timeout: bound of the broker's confirmation of a ping, and of the wait for room
            in the connection's writer for a reply, in seconds.
        drain_timeout: how long `close()` waits for handlers and queued events, in seconds.
        backoff: reconnect delays (default: `Backoff()`, 0.1 s doubling up to 0.5 s, jittered).
    """

    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        prefix: str = "ari.",
        name: str = "",
        ssl_context: ssl.SSLContext | None = None,
        request_channels: int = 32,
        create_ttl_ms: int | None = None,
        publish_buffer: int = 10_000,
        max_inflight: int = 1024,
        prefetch: int = 256,
        heartbeat: int = 10,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        drain_timeout: float = 5.0,
        backoff: Backoff | None = None,
        scope: str = "",
    ) -> None:
        # `scope` needs nothing here: replies come over direct reply-to, private to the
        # channel, and a scoped client's subjects carry its application in their routing keys,
        # which topic permissions check (docs/security.md).
        del scope
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ValueError("RabbitTransport needs at least one URL")
        for url in urls:
            if URL(url).scheme not in ("amqp", "amqps"):
                raise ValueError(f"not an AMQP URL: {redact_url(url)}")
        if publish_buffer < 1 or max_inflight < 1 or prefetch < 0:
            raise ValueError("publish_buffer and max_inflight must be positive, prefetch >= 0")
        Subjects(prefix)  # raises ProtocolError for a bad prefix
        self.prefix = prefix
        self.name = name
        self._create_ttl_ms = create_ttl_ms
        self._publish_timeout = publish_timeout
        self._drain_timeout = drain_timeout
        self._pool = ReplyPool(request_channels)
        self._link = Link(
            [_with_heartbeat(url, heartbeat) for url in urls],
            ssl_context=ssl_context,
            client_properties={"connection_name": name} if name else {},
            prefetch=prefetch,
            connect_timeout=connect_timeout,
            backoff=backoff or Backoff(),
            on_setup=self._on_setup,
            on_lost=self._on_lost,
            on_consumer_cancel=self._on_consumer_cancel,
        )
        self._registry = Registry(self._link, max_inflight=max_inflight)
        self._outbox = Outbox(self._link, size=publish_buffer, publish_timeout=publish_timeout)
        self._request_routes: dict[str, tuple[Route, bool]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<RabbitTransport {self.name or 'unnamed'} {self._link.state.value}>"

    # --- state ------------------------------------------------------------------------------

    @property
    def state(self) -> BusState:
        """Where the link to the broker is: CONNECTING until the first connection."""
        return self._link.state

    @property
    def gaps(self) -> int:
        """How many times an established connection was lost (messages may have been missed)."""
        return self._link.gaps

    @property
    def last_failure(self) -> str:
        """Why the latest connection attempt failed (URLs redacted), or "" (see
        `connect_within`)."""
        return self._link.last_failure

    @property
    def dropped(self) -> int:
        """Received messages dropped: their subscription had `max_inflight` handlers running."""
        return self._registry.dropped

    @property
    def max_payload(self) -> int | None:
        """None: AMQP does not tell the broker's largest message (RabbitMQ's `max_message_size`,
        a broker setting), so the transport knows no limit."""
        return None

    @property
    def dropped_events(self) -> int:
        """Events and announcements dropped: the outbox was full, or the broker kept refusing
        them."""
        return self._outbox.dropped

    @property
    def buffered_events(self) -> int:
        """Events and announcements waiting in the outbox."""
        return len(self._outbox)

    @property
    def request_channels_open(self) -> int:
        """Reply channels currently open (never more than `request_channels`)."""
        return self._pool.open_channels

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every state change (after a reconnect: CONNECTED again)."""
        self._link.on_state(callback)

    def _check_usable(self) -> None:
        if self._link.closing:
            raise ClientClosedError("the RabbitMQ transport is closed")

    def _check_started(self) -> None:
        self._check_usable()
        if not self._link.started:
            raise TransportError("the RabbitMQ transport is not connected: call connect() first")

    async def _on_setup(self) -> None:
        self._pool.reset(self._link.generation)
        await self._registry.restore_all()

    def _on_lost(self) -> None:
        self._pool.reset(self._link.generation)
        self._pool.fail_all(TransportError("the connection to RabbitMQ was lost"))

    def _on_consumer_cancel(self, frame: Basic.Cancel) -> None:
        self._registry.on_consumer_cancel(frame)

    # --- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, retrying forever with backoff (each URL in turn) until it succeeds; later
        losses are repaired in the background. Subscriptions made before start with it.

        Raises:
            ClientClosedError: `close()` was called first.
        """
        self._check_usable()
        self._link.start()
        self._outbox.start()
        await self._link.wait_connected()

    async def close(self) -> None:
        """Stop consuming, let running handlers finish and queued events go out (both within
        `drain_timeout`), delete this process's private queues, and close the connection.
        Pending and later requests fail with `ClientClosedError`. Idempotent."""
        if self._link.closing:
            return
        self._link.begin_close()
        self._pool.fail_all(ClientClosedError("the RabbitMQ transport was closed"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._registry.stop()
        except TimeoutError:
            pass
        # Handlers may still reply and publish while they drain.
        await self._registry.drain(deadline)
        await self._outbox.flush(max(0.0, deadline - loop.time()))
        self._closed = True
        await self._outbox.close()
        await self._registry.close()
        await self._pool.close()
        await self._link.close()

    # --- server side ------------------------------------------------------------------------

    async def serve(self, subject: str, handler: Handler, *, group: str = "") -> RabbitSubscription:
        """Receive requests on `subject` (bound to `ari.request` unless its class says else).

        Without `group`: on this process's private queue `<ulid>-q` (one for all such subjects,
        durable with `x-expires` 30 s, as Go's). With `group` (`ariproxy` for creates): on the
        queue `<group>-<subject>` that the group's servers, Go ones included, share, so that
        each request reaches one of them.

        Raises:
            ProtocolError: `subject` or `group` is not valid.
            TransportError: the broker refused the queue or binding.
            ClientClosedError: the transport is closed.
        """
        self._check_usable()
        check_subject(subject, wildcards=True)
        binding = route(subject, self.prefix, REQUEST_EXCHANGE)
        if group:
            kind, queue = Kind.SERVE_GROUP, serve_group_queue(check_token(group, "group"), subject)
        else:
            kind, queue = Kind.SERVE, self._registry.serve_queue
        runner = self._registry.runner(subject, handler)
        return await self._registry.add(
            RabbitSubscription(self._registry, kind, subject, runner, queue, binding)
        )

    async def on_ping(self, subject: str, handler: Handler) -> RabbitSubscription:
        """Receive pings, on a private queue `<subject>-<ulid>-q` bound to the `ari.ping`
        fan-out.

        Raises:
            ProtocolError: `subject` is not valid.
            TransportError: the broker refused the queue or binding.
            ClientClosedError: the transport is closed.
        """
        self._check_usable()
        check_subject(subject, wildcards=False)
        runner = self._registry.runner(subject, handler)
        return await self._registry.add(
            RabbitSubscription(
                self._registry,
                Kind.PING,
                subject,
                runner,
                ping_queue(subject),
                Route(PING_EXCHANGE, subject),
            )
        )

    async def reply(self, message: BusMessage, data: bytes) -> None:
        """Answer a request received through `serve`: publish `data` on the default exchange to
        its `reply_to`, echoing its `correlation_id`. No-op when the request has no reply
        address.

        The reply is not confirmed by the broker (Go's are not either): a reply lost on the way
        ends in its requester's timeout whether or not we learn of it, and waiting for the
        confirmation cost a frame to read and a turn of the event loop per request. It returns
        once the frames are queued for the socket.

        Raises:
            TransportError: not connected, or no room to queue the reply within
                `publish_timeout`.
            ProtocolError: `reply_to` or `correlation_id` is longer than AMQP carries.
            ClientClosedError: the transport is closed.
        """
        if not message.reply:
            return
        if self._closed:
            raise ClientClosedError("the RabbitMQ transport is closed")
        if not self._link.up:
            raise TransportError(f"not connected to RabbitMQ: no reply sent to {message.reply!r}")
        try:
            with amqp_errors():
                channel = await self._link.channel("replies")
                frames = publish_frames(
                    channel.number,
                    exchange="",
                    routing_key=message.reply,
                    body=data,
                    properties=reply_properties(message.correlation_id),
                    frame_max=channel.connection.connection_tune.frame_max,
                )
                await send_frames(channel, frames, timeout=self._publish_timeout)
        except ValueError as exc:
            raise ProtocolError(f"cannot reply over AMQP: {exc}") from None
        except TimeoutError:
            raise TransportError(
                f"no room to send a reply to {message.reply!r} within {self._publish_timeout:g} s"
            ) from None

    async def publish(self, subject: str, data: bytes) -> None:
        """Queue an event (`<prefix>event.…`, `<prefix>dialogevent.…`, to `ari.event`) or an
        announcement (`<prefix>announce`, to `ari.announce`); returns at once, the outbox sends
        it whenever connected.

        Raises:
            ProtocolError: `subject` is not valid (or longer than a routing key can be).
            TransportError: `connect()` was never called.
            ClientClosedError: the transport is closed.
        """
        check_subject(subject, wildcards=False)
        if self._closed:
            raise ClientClosedError("the RabbitMQ transport is closed")
        if not self._link.started:
            raise TransportError("the RabbitMQ transport is not connected: call connect() first")
        exchange, key = route(subject, self.prefix, EVENT_EXCHANGE)
        if len(key.encode()) > _MAX_ROUTING_KEY:
            raise ProtocolError(f"a RabbitMQ routing key has at most 255 bytes: {subject!r}")
        self._outbox.put(exchange, key, bytes(data))

    # --- client side ------------------------------------------------------------------------

    async def subscribe(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> RabbitSubscription:
        """Receive events matching `subject` (`*`, and `>` or `#` as the tail), or
        announcements (`<prefix>announce`).

        Events arrive on a private, exclusive, auto-deleted queue bound to `ari.event`; with
        `group`, on the queue `ari-proxy-listen.<group>.<subject>` the group shares, so that
        each event reaches one member. Announcements arrive on a private queue
        `<subject>-<ulid>-q` bound to the `ari.announce` fan-out.

        Raises:
            ProtocolError: `subject` or `group` is not valid, or a group for announcements.
            TransportError: the broker refused the queue or binding.
            ClientClosedError: the transport is closed.
        """
        self._check_usable()
        check_subject(subject, wildcards=True)
        runner = self._registry.runner(subject, handler)
        binding = route(subject, self.prefix, EVENT_EXCHANGE)
        if classify(subject, self.prefix) is SubjectClass.ANNOUNCE:
            if group:
                raise ProtocolError("announcements go to every subscriber: no group")
            kind, queue = Kind.ANNOUNCE, announce_queue(subject)
        elif group:
            kind, queue = Kind.EVENT_GROUP, listen_group_queue(check_token(group, "group"), subject)
        else:
            kind, queue = Kind.EVENT, event_queue()
        return await self._registry.add(
            RabbitSubscription(self._registry, kind, subject, runner, queue, binding)
        )

    async def ping(self, subject: str, data: bytes) -> None:
        """Publish a ping on the `ari.ping` fan-out and wait for the broker's confirmation.

        Raises:
            ProtocolError: `subject` is not valid.
            TransportError: not connected, or the broker did not confirm.
            ClientClosedError: the transport is closed.
        """
        check_subject(subject, wildcards=False)
        properties = Basic.Properties(content_type=_JSON, delivery_mode=_TRANSIENT)
        await self._publish_confirmed(PING_EXCHANGE, subject, data, properties)

    async def _publish_confirmed(
        self, exchange: str, routing_key: str, body: bytes, properties: Basic.Properties
    ) -> None:
        if self._closed:
            raise ClientClosedError("the RabbitMQ transport is closed")
        if not self._link.up:
            raise TransportError(f"not connected to RabbitMQ: nothing sent to {routing_key!r}")
        try:
            async with asyncio.timeout(self._publish_timeout):
                with amqp_errors():
                    channel = await self._link.channel("confirm")
                    # Many handlers reply on this one channel: `wait=False` keeps each from
                    # holding the channel's lock until the socket drained; the broker's
                    # confirmation is still awaited, concurrently.
                    await publish(
                        channel,
                        bytes(body),
                        exchange=exchange,
                        routing_key=routing_key,
                        properties=properties,
                        wait=False,
                    )
        except TimeoutError:
            raise TransportError(
                f"RabbitMQ did not confirm a message to {routing_key!r} "
                f"within {self._publish_timeout:g} s"
            ) from None

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:
        """Send a request (exchange `ari.request`, routing key `subject`) and return the first
        reply. Waiting for the connection and for a free reply channel counts in `timeout`.

        Raises:
            RequestTimeout: no reply within `timeout`.
            NoProxyError: no queue is bound for `subject` (the broker returned the request).
            TransportError: `connect()` was never called, or the connection was lost before
                the reply came.
            ProtocolError: `subject` is not valid.
            ClientClosedError: the transport is closed.
        """
        replies = await self._call(subject, data, timeout=timeout, enough=None)
        return replies[0]

    async def gather(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        """Send a request several servers answer; collect replies until `enough(replies)` is
        true (asked after each reply), `MAX_GATHER_REPLIES` arrived or `timeout` passed, and
        return them. With no queue bound for `subject`, return `[]` at once.

        Raises:
            TransportError: `connect()` was never called, or the connection was lost before
                the gather ended.
            ProtocolError: `subject` is not valid.
            ClientClosedError: the transport is closed.
            Exception: whatever `enough` raised.
        """
        return await self._call(subject, data, timeout=timeout, enough=enough)

    def _request_route(self, subject: str) -> tuple[Route, bool]:
        """Where requests on `subject` go, and whether they are creates; checked and worked
        out once per subject (a client uses a few per application and node).

        Raises:
            ProtocolError: `subject` is not valid.
        """
        known = self._request_routes.get(subject)
        if known is None:
            check_subject(subject, wildcards=False)
            create = classify(subject, self.prefix) is SubjectClass.CREATE
            known = (route(subject, self.prefix, REQUEST_EXCHANGE), create)
            if len(self._request_routes) >= _MAX_ROUTES:
                self._request_routes.clear()
            self._request_routes[subject] = known
        return known

    async def _call(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool] | None,
    ) -> list[bytes]:
        (exchange, key), create = self._request_route(subject)
        self._check_started()
        ttl_ms = max(1, int(timeout * 1000))
        if create and self._create_ttl_ms:
            ttl_ms = self._create_ttl_ms
        replies: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                conn, generation = await self._link.wait_connected()
                with amqp_errors():
                    async with self._pool.lease(conn, generation) as lease:
                        self._check_usable()
                        inbox = lease.channel.begin(new_id("cr"))
                        await lease.channel.publish(exchange, key, bytes(data), ttl_ms)
                        while True:
                            item = await inbox.get()
                            if isinstance(item, aiormq.exceptions.PublishError):
                                # Returned: it reached nobody, nobody answers.
                                lease.clean = True
                                if enough is not None:
                                    return []
                                raise item
                            if isinstance(item, BaseException):
                                self._check_usable()
                                raise TransportError(
                                    "the connection to RabbitMQ was lost before the reply "
                                    f"to {subject!r} came: the request may or may not have run"
                                ) from item
                            replies.append(item)
                            if enough is None:
                                lease.clean = True
                                break
                            if len(replies) >= MAX_GATHER_REPLIES or enough(replies):
                                break
        except TimeoutError:
            if enough is not None:
                return replies
            raise RequestTimeout(f"no reply on {subject!r} within {timeout:g} s") from None
        return replies


def _with_heartbeat(url: str, heartbeat: int) -> str:
    parsed = URL(url)
    if "heartbeat" in parsed.query:
        return url
    return str(parsed.update_query(heartbeat=str(heartbeat)))


if TYPE_CHECKING:  # mypy checks that the class implements the interface

    def _is_a_transport(transport: RabbitTransport) -> Transport:
        return transport
