"""Client requests over RabbitMQ direct reply-to: reply channels and their bounded pool.

A Go server does not echo `correlation_id` (Go defect 38), so a reply can only be matched to its
request by where it arrives: each request has a channel of its own, with its own consumer on
`amq.rabbitmq.reply-to`, for as long as it is in flight. Go opens a new channel per request and
never closes it, which exhausts the channel-id space after ~2047 requests (Go defect 29). Here a
fixed number of channels is reused: `ReplyPool` hands out at most `size` of them, and a request
finding none free waits (its timeout still runs).

Reusing a channel needs care: a reply may still arrive for the previous request (a timed-out
request, or a gather whose late answerers were not waited for). The broker routes a direct
reply only to the consumer whose key is in the `reply_to` it rewrote; cancelling and
re-consuming gives the channel a new key, so anything addressed to the old one is dropped by the
broker itself. A channel whose request ended uncleanly is "re-armed" that way before reuse; a
unicast request answered normally needs nothing (and replies that carry a correlation id, as
ours do, are checked anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, cast

import aiormq.abc
import aiormq.exceptions
from pamqp.commands import Basic

from ..protocol import new_id
from ._rabbitmq_errors import BACKEND_ERRORS
from ._rabbitmq_frames import publish_frames, request_properties
from ._rabbitmq_link import Deliver, as_consumer, deliver_inline, read_content, send_frames
from ._rabbitmq_topology import REPLY_TO

__all__ = ["Lease", "ReplyChannel", "ReplyPool"]

log = logging.getLogger(__name__)

_JSON = "application/json"

Reply = bytes | BaseException
"""An item of a request's inbox: a reply body, or why no reply can come any more (a
`PublishError`: the broker returned the request, no queue took it)."""


class ReplyChannel:
    """One AMQP channel (no publisher confirms; returns reported to the request) with one direct
    reply-to consumer, carrying one request at a time."""

    def __init__(self, channel: aiormq.abc.AbstractChannel, generation: int) -> None:
        self.channel = channel
        self.generation = generation
        """The link generation it was opened on (see `Link.generation`)."""
        self._consumer_tag = ""
        self._correlation_id = ""
        self._inbox: asyncio.Queue[Reply] | None = None
        self._consumers: dict[str, Deliver] = {}

    @classmethod
    async def open(cls, connection: aiormq.abc.AbstractConnection, generation: int) -> ReplyChannel:
        """Open a channel on `connection` and start its reply consumer.

        Raises:
            the backend's exceptions (translated by the caller).
        """
        channel = await connection.channel(publisher_confirms=False)
        self = cls(channel, generation)
        # aiormq matches a returned message to a publish through its confirmation, which an
        # unconfirmed channel has none of (it only logs the return); the channel's reader calls
        # this attribute for each basic.return (tests/bus/test_bus_rabbitmq_aiormq.py).
        cast(Any, channel)._on_return_frame = self._on_return
        deliver_inline(channel, self._consumers)
        channel.closing.add_done_callback(self._on_channel_closed)
        try:
            await self._consume()
        except BaseException:
            with contextlib.suppress(*BACKEND_ERRORS):
                await channel.close()
            raise
        return self

    @property
    def usable(self) -> bool:
        """Open, and not in the middle of a request."""
        return not self.channel.is_closed and self._inbox is None

    async def _consume(self) -> None:
        tag = new_id("rp")
        self._consumer_tag = tag
        self._consumers.clear()
        self._consumers[tag] = self._on_reply
        await self.channel.basic_consume(
            REPLY_TO, as_consumer(self._on_reply), no_ack=True, consumer_tag=tag
        )

    async def rearm(self) -> None:
        """Take a new reply-to key, so that the broker drops replies still on their way to the
        previous one.

        Raises:
            the backend's exceptions.
        """
        old = self._consumer_tag
        self._consumer_tag = ""  # deliveries for `old` still in the reader are ignored
        await self.channel.basic_cancel(old)
        await self._consume()

    def begin(self, correlation_id: str) -> asyncio.Queue[Reply]:
        """Start a request; replies (or the reason none can come) arrive in the returned queue."""
        self._correlation_id = correlation_id
        self._inbox = asyncio.Queue()
        return self._inbox

    def end(self) -> None:
        """The request is over; later replies are dropped."""
        self._inbox = None
        self._correlation_id = ""

    def fail(self, exc: BaseException) -> None:
        """Tell the waiting request (if any) that no reply will come."""
        if self._inbox is not None:
            self._inbox.put_nowait(exc)

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, expiration_ms: int
    ) -> None:
        """Publish the current request, mandatory, unconfirmed: once its frames are queued for
        the socket this returns (without a turn of the event loop when the writer has room). A
        request no queue takes comes back as a `PublishError` in the request's inbox.

        Waiting for the broker's confirmation told nothing the reply does not (Go's client does
        not wait either), and cost a frame to read and a turn of the loop per request.

        Raises:
            ValueError: `routing_key` is longer than AMQP allows.
            the backend's exceptions (a closed channel).
        """
        channel = self.channel
        frames = publish_frames(
            channel.number,
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            # A per-message TTL: a request still queued when its requester has given up is
            # dropped by the broker instead of being run later (Go Go defect 35; the shared
            # create queues cannot carry a queue TTL without breaking Go servers).
            properties=request_properties(self._correlation_id, REPLY_TO, str(expiration_ms)),
            frame_max=channel.connection.connection_tune.frame_max,
            mandatory=True,
        )
        await send_frames(channel, frames, timeout=expiration_ms / 1000)

    async def _on_return(self, frame: Basic.Return) -> None:
        """A basic.return: read its content off the channel (as aiormq would) and, when it is
        the current request, tell the request that nobody took it."""
        message = await read_content(self.channel, frame)
        correlation_id = message.header.properties.correlation_id
        if self._inbox is not None and correlation_id == self._correlation_id:
            self._inbox.put_nowait(aiormq.exceptions.PublishError(message, frame))

    def _on_reply(self, message: aiormq.abc.DeliveredMessage) -> None:
        delivery = message.delivery
        if getattr(delivery, "consumer_tag", None) != self._consumer_tag:
            return
        correlation_id = message.header.properties.correlation_id
        if correlation_id and correlation_id != self._correlation_id:
            # Ours echo the id; a mismatch is a reply to an earlier request on this channel.
            log.debug(
                "dropping a reply for %s (waiting for %s)", correlation_id, self._correlation_id
            )
            return
        if self._inbox is None:
            log.debug("dropping a reply that arrived with no request waiting")
            return
        self._inbox.put_nowait(message.body)

    def _on_channel_closed(self, closing: asyncio.Future[object]) -> None:
        reason: BaseException | None = None
        if not closing.cancelled():
            reason = closing.exception()
        self.fail(reason or ConnectionResetError("the reply channel was closed"))


@dataclass(eq=False, slots=True)
class Lease:
    """One request's hold on a reply channel.

    Attributes:
        channel: the reply channel.
        clean: set by the request when nothing more can be on its way to the channel (a
            unicast request that got its reply); otherwise the channel is re-armed before reuse.
    """

    channel: ReplyChannel
    clean: bool = False


class _Leasing:
    """What `ReplyPool.lease` returns: a plain class rather than an `asynccontextmanager`,
    whose generator and wrapper cost a few microseconds per request."""

    __slots__ = ("_connection", "_generation", "_lease", "_pool")

    def __init__(
        self, pool: ReplyPool, connection: aiormq.abc.AbstractConnection, generation: int
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._generation = generation
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        self._lease = await self._pool._lend(self._connection, self._generation)
        return self._lease

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lease is not None:
            self._pool._return(self._lease)


class ReplyPool:
    """At most `size` reply channels, reused, each leased to one request at a time."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("request_channels must be at least 1")
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._idle: list[ReplyChannel] = []
        self._leased: set[ReplyChannel] = set()
        self._rearming: set[asyncio.Task[None]] = set()
        self._generation = 0

    @property
    def open_channels(self) -> int:
        """Channels held by the pool (idle, leased or being re-armed); never above `size`."""
        return len(self._idle) + len(self._leased) + len(self._rearming)

    def reset(self, generation: int) -> None:
        """Forget every idle channel: the connection they belonged to is gone."""
        self._generation = generation
        self._idle.clear()

    def fail_all(self, exc: BaseException) -> None:
        """Fail every request that is waiting for a reply (close, lost connection)."""
        for channel in list(self._leased):
            channel.fail(exc)

    def lease(self, connection: aiormq.abc.AbstractConnection, generation: int) -> _Leasing:
        """`async with pool.lease(...) as lease`: borrow a reply channel for one request,
        waiting for a free slot (bound the wait with the request's timeout).

        Raises (on entering):
            the backend's exceptions, when a new channel cannot be opened.
        """
        return _Leasing(self, connection, generation)

    async def _lend(self, connection: aiormq.abc.AbstractConnection, generation: int) -> Lease:
        await self._slots.acquire()
        try:
            channel = await self._take(connection, generation)
        except BaseException:
            self._slots.release()
            raise
        self._leased.add(channel)
        return Lease(channel)

    def _return(self, lease: Lease) -> None:
        channel = lease.channel
        self._leased.discard(channel)
        channel.end()
        self._release(channel, clean=lease.clean)

    async def _take(
        self, connection: aiormq.abc.AbstractConnection, generation: int
    ) -> ReplyChannel:
        while self._idle:
            channel = self._idle.pop()
            if channel.generation == generation and channel.usable:
                return channel
        return await ReplyChannel.open(connection, generation)

    def _release(self, channel: ReplyChannel, *, clean: bool) -> None:
        if channel.generation != self._generation or channel.channel.is_closed:
            # From a lost connection (closed with it), or closed by the broker.
            self._slots.release()
            return
        if clean:
            self._idle.append(channel)
            self._slots.release()
            return
        # The slot stays taken until the channel is re-armed, so the pool never holds more
        # than `size` channels.
        task = asyncio.get_running_loop().create_task(self._rearm(channel))
        self._rearming.add(task)
        task.add_done_callback(self._rearming.discard)

    async def _rearm(self, channel: ReplyChannel) -> None:
        try:
            await channel.rearm()
        except BACKEND_ERRORS as exc:
            log.debug("could not re-arm a reply channel (%r); closing it", exc)
            with contextlib.suppress(*BACKEND_ERRORS):
                await channel.channel.close()
        else:
            if channel.generation == self._generation and not channel.channel.is_closed:
                self._idle.append(channel)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Stop re-arming and forget every channel (closing the connection closes them)."""
        for task in list(self._rearming):
            task.cancel()
        await asyncio.gather(*self._rearming, return_exceptions=True)
        self._idle.clear()
