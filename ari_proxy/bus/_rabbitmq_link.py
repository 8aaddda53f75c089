"""The supervised RabbitMQ connection: connect, watch, reconnect forever, restore.

`Link` owns the one AMQP connection of a transport and its fixed channels. It connects to each
URL in turn with jittered exponential backoff, declares the four exchanges, calls the owner's
`on_setup` hook (which restores every subscription) and only then reports CONNECTED. When the
connection, or its consume channel, dies it counts a gap, reports RECONNECTING, calls `on_lost`
and starts over. Nothing here is aio-pika's Robust* machinery: the owner decides what to
restore, in which order, and can see it happen.

Channels of one connection:

| channel  | carries                                   | confirms | if the broker closes it  |
|----------|-------------------------------------------|----------|--------------------------|
| topology | declarations, bindings, deletions         | no       | reopened on next use     |
| consume  | every consumer (prefetch-bounded), acks   | no       | full reconnect           |
| confirm  | pings                                     | yes      | reopened on next use     |
| events   | events and announcements, from the outbox | no       | reopened on next use     |
| replies  | replies to requests                       | no       | reopened on next use     |

The events and replies channels are written to directly (`write_frames`: whole batches of
publish frames, one socket write each; `send_frames`: a reply's frames, not waiting for the
socket); everything else goes through aiormq's methods. `write_frames` uses what
aiormq's abstract interface declares (`AbstractConnection.write_queue`, `FRAME_BUFFER_SIZE`,
`ChannelFrame`) but whose behaviour its writer task alone defines, so aiormq is pinned to the
versions tested and `tests/bus/test_bus_rabbitmq_aiormq.py` checks every name used here.

(Reply channels for client requests are opened by `ReplyPool` on the same connection.) A
declaration the broker refuses closes only the topology channel; a consumer lost with a dead
consume channel cannot be repaired without re-consuming everything, hence a full reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import aiormq
import aiormq.abc
import aiormq.exceptions
from pamqp.commands import Basic
from pamqp.common import FieldTable

from .._backoff import Backoff, worth_logging
from .._exceptions import (
    AuthenticationError,
    CertificateError,
    ClientClosedError,
    ConnectError,
    TransportError,
    certificate_refusal,
)
from .._redact import redact_url
from ._rabbitmq_errors import AUTH_FAILURE, BACKEND_ERRORS, amqp_errors, redact_text, translate
from ._rabbitmq_reader import MarkingTransportFactory
from ._rabbitmq_topology import EXCHANGES
from ._state import StateKeeper
from ._transport import BusState

__all__ = [
    "ChannelName",
    "Deliver",
    "Link",
    "as_consumer",
    "deliver_inline",
    "publish",
    "read_content",
    "send_frames",
    "write_frames",
]

log = logging.getLogger(__name__)

Channel = aiormq.abc.AbstractChannel
Connection = aiormq.abc.AbstractConnection
ChannelName = Literal["topology", "consume", "confirm", "events", "replies"]
Deliver = Callable[[aiormq.abc.DeliveredMessage], None]
"""A consumer that takes a delivery at once, without awaiting anything."""


@dataclass(frozen=True)
class _Batch(aiormq.abc.ChannelFrame):
    """Several queued items as one: their payloads joined, each one's drain future set once the
    socket took them all."""

    drains: tuple[asyncio.Future[None], ...] = ()

    @property
    def should_drain(self) -> bool:
        return any(not future.done() for future in self.drains)

    def drain(self) -> None:
        for future in self.drains:
            if not future.done():
                future.set_result(None)


class _WriteQueue(asyncio.Queue[aiormq.abc.ChannelFrame]):
    """A connection's queue of frames for its writer task, which also tells when it has room
    and hands the writer everything queued so far as one item.

    `write_frames` must check that its channel is open and put its frames with no await in
    between, so it cannot wait in `put()`; asyncio.Queue has no public way to wait for room
    without putting. Every item taken makes room, so taking one wakes the waiters.

    aiormq's writer writes each item it takes to the socket, a `send` system call each (the
    costliest single step of a reply on this machine); what the publishers of one loop turn
    queued (replies, acks, requests) is joined into one write instead. An item that closes the
    connection is never joined: it waits for the next take, after what came before it.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._room: list[asyncio.Future[None]] = []
        self._held: aiormq.abc.ChannelFrame | None = None

    def get_nowait(self) -> aiormq.abc.ChannelFrame:
        item = self._held
        if item is not None:
            self._held = None
            return item
        item = super().get_nowait()
        if not item.should_close and not self.empty():
            item = self._join(item)
        self._wake()
        return item

    async def get(self) -> aiormq.abc.ChannelFrame:
        if self._held is not None:
            return self.get_nowait()
        # asyncio's get() ends in get_nowait(), which joins and wakes the waiters.
        return await super().get()

    def _join(self, first: aiormq.abc.ChannelFrame) -> aiormq.abc.ChannelFrame:
        items = [first]
        while not self.empty():
            item = super().get_nowait()
            if item.should_close:
                self._held = item  # taken later, and marked done then by the writer
                break
            self.task_done()  # the writer marks one item done per take
            items.append(item)
        if len(items) == 1:
            return first
        return _Batch(
            payload=b"".join([item.payload for item in items]),
            should_close=False,
            drains=tuple(item.drain_future for item in items if item.drain_future is not None),
        )

    def room(self) -> asyncio.Future[None]:
        """A future that is done once the queue has room (at once when it has)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.full():
            self._room.append(future)
        else:
            future.set_result(None)
        return future

    def _wake(self) -> None:
        waiters, self._room = self._room, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


class _Connection(aiormq.Connection):
    """aiormq's connection (what `aiormq.connect` opens) with room for more outgoing frames,
    a writer queue that tells when it has room (`_WriteQueue`), and frames read faster
    (`_rabbitmq_reader`).

    Its writer queue holds 10 frames by default, so with dozens of requests and replies in
    flight each publisher waited for the writer task to make room: a task switch per frame,
    which cost about a fifth of the CPU time of a request.
    """

    FRAME_BUFFER_SIZE = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Before any channel (each keeps the connection's queue) and the writer task exist.
        self.write_queue = _WriteQueue(self.FRAME_BUFFER_SIZE)
        # Its frames are read by `_rabbitmq_reader.FrameReceiver`'s faster path.
        self._transport_factory = MarkingTransportFactory(self._transport_factory)


_FRAME_BUFFER = 10
"""aiormq's default bound of a channel's incoming frames."""

_CONFIRM_BUFFER = 1024
"""Incoming frames of the confirm channel: confirmations of concurrent replies."""


@dataclass(eq=False)
class _Channels:
    topology: Channel
    consume: Channel
    confirm: Channel
    events: Channel
    replies: Channel


class Link:
    """One supervised AMQP connection with its fixed channels.

    Args:
        urls: broker URLs, tried in turn (credentials are redacted in every log line).
        ssl_context: TLS settings for `amqps://`.
        client_properties: sent to the broker (`connection_name`).
        prefetch: per-consumer prefetch of the consume channel (0: unlimited).
        connect_timeout: bound of one connection attempt, in seconds.
        backoff: delays between rounds of attempts.
        on_setup: awaited on every new connection once the exchanges are declared, before
            CONNECTED is reported; raising a backend error or `TransportError` makes the
            attempt fail and be retried.
        on_lost: called when an established connection is lost.
        on_consumer_cancel: called when the broker cancels a consumer (its queue was deleted).
    """

    def __init__(
        self,
        urls: list[str],
        *,
        ssl_context: ssl.SSLContext | None,
        client_properties: FieldTable,
        prefetch: int,
        connect_timeout: float,
        backoff: Backoff,
        on_setup: Callable[[], Awaitable[None]],
        on_lost: Callable[[], None],
        on_consumer_cancel: Callable[[Basic.Cancel], None],
    ) -> None:
        self._urls = urls
        self._ssl_context = ssl_context
        self._client_properties = client_properties
        self._prefetch = prefetch
        # Room for every delivery the broker may send before an ack (three frames each), so
        # that the connection's reader hands over a whole read at once instead of stopping
        # every three deliveries for the channel to catch up (aiormq's default is 10 frames).
        self._consume_buffer = 3 * prefetch + _FRAME_BUFFER if prefetch else 0
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._on_setup = on_setup
        self._on_lost = on_lost
        self._on_consumer_cancel = on_consumer_cancel

        self._state = StateKeeper()
        self._conn: Connection | None = None
        self._channels: _Channels | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._reopen_lock = asyncio.Lock()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self.gaps = 0
        """How many times an established connection was lost."""
        self.last_failure = ""
        """Why the latest connection attempt failed (URLs redacted), or ""."""
        self.refused: ConnectError | None = None
        """Set when the broker refused the credentials, or its certificate was not trusted,
        before the first connection: the link stopped trying, and `wait_connected` raises it."""

    # --- state ------------------------------------------------------------------------------

    @property
    def state(self) -> BusState:
        """Where the link is: CONNECTING until the first connection."""
        return self._state.state

    @property
    def started(self) -> bool:
        """`start()` was called."""
        return self._supervisor is not None

    @property
    def generation(self) -> int:
        """Changes with every connection made or lost: what was set up on another generation
        belongs to a dead connection."""
        return self._generation

    @property
    def up(self) -> bool:
        """A connection with its channels is there (possibly still being set up)."""
        conn = self._conn
        return conn is not None and not conn.is_closed and self._channels is not None

    @property
    def closing(self) -> bool:
        """`begin_close()` was called."""
        return self._closing

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every state change."""
        self._state.add(callback)

    async def wait_connected(self) -> tuple[Connection, int]:
        """The connection and its generation, once CONNECTED.

        Raises:
            ClientClosedError: the link is closing.
        """
        while True:
            if self.refused is not None:
                raise self.refused
            if self._closing:
                raise ClientClosedError("the RabbitMQ transport is closed")
            conn = self._conn
            if self._state.state is BusState.CONNECTED and conn is not None and not conn.is_closed:
                return conn, self._generation
            # Not connected, or the loss is not processed yet: the supervisor sets the event
            # once the connection is back, and begin_close() sets it to wake us.
            self._connected.clear()
            await self._connected.wait()

    async def channel(self, name: ChannelName) -> Channel:
        """The named channel of the current connection, reopened if the broker closed it.

        Raises:
            TransportError: no connection, or the consume channel is gone (a reconnect
                follows), or the channel cannot be reopened.
        """
        channels = self._channels
        if channels is not None:
            channel: Channel = getattr(channels, name)
            if not channel.is_closed:
                return channel
        async with self._reopen_lock:
            conn, channels = self._conn, self._channels
            if conn is None or conn.is_closed or channels is None:
                raise TransportError("not connected to RabbitMQ")
            channel = getattr(channels, name)
            if channel.is_closed:
                if name == "consume":
                    raise TransportError("the consume channel was closed; reconnecting")
                with amqp_errors():
                    confirm = name == "confirm"
                    channel = await conn.channel(
                        publisher_confirms=confirm,
                        frame_buffer_size=_CONFIRM_BUFFER if confirm else _FRAME_BUFFER,
                    )
                setattr(channels, name, channel)
            return channel

    async def declare_exchanges(self) -> None:
        """Declare the four exchanges (again), exactly as Go peers declare them.

        Raises:
            TransportError: not connected, or the broker refused a declaration.
        """
        channel = await self.channel("topology")
        with amqp_errors():
            await _declare_exchanges(channel.connection, channel)

    # --- supervision ------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (once)."""
        if self._supervisor is None and not self._closing:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="rabbitmq-link"
            )

    async def _supervise(self) -> None:
        index = failures = 0
        while not self._closing:
            url = self._urls[index % len(self._urls)]
            try:
                conn = await self._open(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = translate(exc, connecting=True)
                self.last_failure = str(failure)
                untrusted = certificate_refusal(exc)
                if untrusted and self._generation == 0:  # the CA setting is wrong: end
                    self.refused = CertificateError(
                        f"the message bus's TLS certificate was not trusted (RabbitMQ at "
                        f"{redact_url(url)}): {untrusted}; give the CA that signed it "
                        f"(tls_ca_file)"
                    )
                    self._connected.set()  # wake wait_connected()
                    return
                if isinstance(failure, AuthenticationError):
                    if self._generation == 0:  # never connected: the credentials are wrong
                        self.refused = AuthenticationError(
                            f"the message bus refused the credentials (RabbitMQ at "
                            f"{redact_url(url)}): {failure}"
                        )
                        self._connected.set()  # wake wait_connected()
                        return
                    self.last_failure = f"{AUTH_FAILURE}: {failure}"
                failures += 1
                if worth_logging(failures):
                    log.warning(
                        "cannot connect to RabbitMQ at %s (attempt %d): %s",
                        redact_url(url),
                        failures,
                        self.last_failure,
                    )
                index += 1
                if index % len(self._urls) == 0:
                    await asyncio.sleep(self._backoff.next())
                continue
            self._backoff.reset()
            failures = 0
            log.info("connected to RabbitMQ at %s", redact_url(url))
            self._state.set(BusState.CONNECTED)
            self._connected.set()
            reason = await self._watch(conn)
            if self.closing:  # the property: mypy would keep the loop condition's narrowing
                return
            self._lost(reason)
            with contextlib.suppress(*BACKEND_ERRORS):
                await conn.close()

    async def _open(self, url: str) -> Connection:
        async with asyncio.timeout(self._connect_timeout):
            conn: Connection = _Connection(
                url, context=self._ssl_context, client_properties=self._client_properties
            )
            await conn.connect()
        try:
            channels = _Channels(
                topology=await conn.channel(publisher_confirms=False),
                consume=await conn.channel(
                    publisher_confirms=False, frame_buffer_size=self._consume_buffer
                ),
                confirm=await conn.channel(
                    publisher_confirms=True, frame_buffer_size=_CONFIRM_BUFFER
                ),
                events=await conn.channel(publisher_confirms=False),
                replies=await conn.channel(publisher_confirms=False),
            )
            if self._prefetch:
                await channels.consume.basic_qos(prefetch_count=self._prefetch)
            channels.consume.on_consumer_cancel_callbacks.add(self._on_consumer_cancel)
            await _declare_exchanges(conn, channels.topology)
            self._generation += 1
            self._conn = conn
            self._channels = channels
            await self._on_setup()
        except BaseException:
            self._conn = None
            self._generation += 1
            with contextlib.suppress(*BACKEND_ERRORS):
                await conn.close()
            raise
        return conn

    async def _watch(self, conn: Connection) -> BaseException | None:
        """Wait until the connection or its consume channel is gone; return why."""
        assert self._channels is not None
        watchers = [conn.closing, self._channels.consume.closing]
        try:
            done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
        for future in done:
            if not future.cancelled() and future.exception() is not None:
                return future.exception()
        return None

    def _lost(self, reason: BaseException | None) -> None:
        self.gaps += 1
        self._generation += 1  # what the lost connection held is never reused
        self._connected.clear()
        self._conn = None
        log.warning("lost the connection to RabbitMQ (%s); reconnecting", redact_text(repr(reason)))
        self._state.set(BusState.RECONNECTING)
        try:
            self._on_lost()
        except Exception:
            log.exception("the connection-lost hook failed")

    # --- closing ----------------------------------------------------------------------------

    def begin_close(self) -> None:
        """Refuse new work and wake everyone waiting for the connection (they raise
        `ClientClosedError`); the connection stays up until `close()`."""
        self._closing = True
        self._connected.set()

    async def close(self) -> None:
        """Stop reconnecting, close the connection, report CLOSED."""
        self.begin_close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*BACKEND_ERRORS):
                await conn.close()
        self._state.set(BusState.CLOSED)


async def _declare_exchanges(conn: Any, channel: Channel) -> None:
    """Make sure the four exchanges exist, exactly as Go peers declare them.

    They are first checked with a passive declaration (on a channel of its own, which the
    broker closes when one is missing): that needs no configure permission, so a user limited
    to its application (docs/security.md) can connect once a proxy has declared them. Only when
    one is missing are they declared for real.
    """
    probe = await conn.channel(publisher_confirms=False)
    try:
        for exchange in EXCHANGES:
            await probe.exchange_declare(exchange.name, passive=True)
        return
    except aiormq.exceptions.ChannelNotFoundEntity:
        pass
    finally:
        if not probe.is_closed:
            await probe.close()
    for exchange in EXCHANGES:
        await channel.exchange_declare(
            exchange.name,
            exchange_type=exchange.type,
            durable=exchange.durable,
            auto_delete=exchange.auto_delete,
            internal=exchange.internal,
            arguments=None,
        )


async def publish(
    channel: Channel,
    body: bytes,
    *,
    exchange: str,
    routing_key: str,
    properties: Basic.Properties,
    mandatory: bool = False,
    timeout: float | None = None,
    wait: bool = True,
) -> object:
    """`basic_publish`, with the `wait` flag aiormq's channel has but its abstract interface
    does not declare. With `wait=False` the publish returns once its frames are queued for the
    socket, instead of holding the channel's lock until the socket drained; on a confirming
    channel the broker's confirmation is still awaited (and returned).

    Raises:
        the backend's exceptions (`PublishError` for a returned mandatory message).
    """
    return await cast(aiormq.Channel, channel).basic_publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        properties=properties,
        mandatory=mandatory,
        timeout=timeout,
        wait=wait,
    )


async def write_frames(channel: Channel, payload: bytes, *, timeout: float) -> None:
    """Hand `payload`, whole frames of `channel` (`_rabbitmq_frames`), to the connection's
    writer and wait until the socket took them, or the channel closed.

    This is the path of aiormq's own `basic_publish` on a channel without confirmations (it
    builds the same frames, with pamqp, and queues them the same way), taken directly so that
    a batch of events is one queued item and one socket write. Once queued the frames are not
    taken back: waiting for the socket is unbounded (a broker that blocked the connection for
    a memory alarm, say), as sending them again later would duplicate them.

    Raises:
        aiormq.exceptions.ChannelInvalidStateError (or the broker's reason for closing it): the
            channel is closed, or was closed before the frames were written.
        TimeoutError: the connection's writer had no room for them within `timeout` seconds.
    """
    drained = asyncio.get_running_loop().create_future()
    closing = channel.closing  # an observer of its own: cancelling it only stops observing
    try:
        await _put(channel, payload, drained, closing, timeout)
        if not drained.done():
            await asyncio.wait((drained, closing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not drained.done():
            # Cancelled while the frames wait for the socket: they are written all the same,
            # but nobody waits for them any more.
            drained.cancel()
        reason = _close_reason(closing)
        closing.cancel()
    if drained.cancelled():
        # Why the broker closed it (NOT_FOUND for a deleted exchange, say) tells the caller
        # what to repair.
        raise reason or aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} was closed")


async def send_frames(channel: Channel, payload: bytes, *, timeout: float) -> None:
    """Hand `payload`, whole frames of `channel`, to the connection's writer, without waiting
    for the socket: what a reply needs, since a reply that never arrives already ends in its
    requester's timeout (Go's server sends replies the same way, unconfirmed). With room in the
    writer's queue this returns without a turn of the event loop.

    Raises:
        aiormq.exceptions.ChannelInvalidStateError: the channel is closed.
        TimeoutError: the connection's writer had no room for them within `timeout` seconds.
    """
    queue = _write_queue(channel)
    if not channel.is_closed and not queue.full():
        queue.put_nowait(aiormq.abc.ChannelFrame(payload=payload, should_close=False))
        return
    closing = channel.closing
    try:
        await _put(channel, payload, None, closing, timeout)
    finally:
        closing.cancel()


def _write_queue(channel: Channel) -> _WriteQueue:
    queue = channel.connection.write_queue
    if not isinstance(queue, _WriteQueue):
        raise TypeError(f"{channel!r} does not belong to a connection opened by Link")
    return queue


async def _put(
    channel: Channel,
    payload: bytes,
    drained: asyncio.Future[None] | None,
    closing: asyncio.Future[object],
    timeout: float,
) -> None:
    """Queue `payload` for the connection's writer once it has room (within `timeout`), unless
    the channel closed (then `drained`, if any, is cancelled and nothing is queued)."""
    queue = _write_queue(channel)
    async with asyncio.timeout(timeout):
        while not channel.is_closed and queue.full():
            room = queue.room()  # the writer makes room with every item it takes
            try:
                await asyncio.wait((room, closing), return_when=asyncio.FIRST_COMPLETED)
            finally:
                room.cancel()
    # Frames must never follow the channel's close-ok (the broker would close the whole
    # connection), so the check and the put happen with no await between them.
    if channel.is_closed:
        if drained is not None:
            drained.cancel()
        else:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} was closed")
        return
    queue.put_nowait(
        aiormq.abc.ChannelFrame(payload=payload, should_close=False, drain_future=drained)
    )


async def read_content(
    channel: Channel, frame: Basic.Deliver | Basic.Return
) -> aiormq.abc.DeliveredMessage:
    """Read the content (header and body frames) that follows `frame` on `channel`, as the
    channel's reader does before it hands a message on."""
    raw = cast(Any, channel)
    header = await raw._get_frame()
    message: aiormq.abc.DeliveredMessage = await raw._read_content(frame, header)
    return message


def as_consumer(deliver: Deliver) -> aiormq.abc.ConsumerCallback:
    """`deliver` as the coroutine `basic_consume` takes: what aiormq calls for a delivery on a
    channel without `deliver_inline`."""

    async def consumer(message: aiormq.abc.DeliveredMessage) -> None:
        deliver(message)

    return consumer


def deliver_inline(channel: Channel, consumers: Mapping[str, Deliver]) -> None:
    """Have `channel`'s reader hand each delivery to `consumers[its consumer tag]` itself, in
    order, instead of aiormq's task per delivery (a task, its bookkeeping and a turn of the
    event loop per message). A delivery for a tag not (or no longer) in `consumers` is dropped.

    The reader calls `_on_deliver_frame` through the channel object for each basic.deliver
    (tests/bus/test_bus_rabbitmq_aiormq.py checks it), so the instance's attribute replaces it.
    A consumer that raises is logged; the channel's reader goes on.
    """

    async def on_deliver(frame: Basic.Deliver) -> None:
        message = await read_content(channel, frame)
        consumer = consumers.get(frame.consumer_tag or "")
        if consumer is None:
            return
        try:
            consumer(message)
        except Exception:
            log.exception("a consumer on RabbitMQ channel %s failed", channel)

    cast(Any, channel)._on_deliver_frame = on_deliver


def _close_reason(closing: asyncio.Future[object]) -> BaseException | None:
    if not closing.done() or closing.cancelled():
        return None
    return closing.exception()
