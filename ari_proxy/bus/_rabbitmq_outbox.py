"""The bounded outbox for events and announcements published over RabbitMQ.

`put()` never waits for the broker: the server's event pipeline must not stall behind a slow or
absent bus (Go's 100-slot buffer drops silently during a RabbitMQ reconnect, Go defect 1). A
pump sends the messages in order whenever the link is up. While it is down at most `size` wait;
beyond, the oldest is dropped and counted, since a fresh event is worth more than a stale one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass

import aiormq.exceptions
from pamqp.commands import Basic

from .._exceptions import ClientClosedError, TransportError
from ._rabbitmq_errors import BACKEND_ERRORS
from ._rabbitmq_frames import encode_properties, publish_frames
from ._rabbitmq_link import Link, write_frames

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

_PROPERTIES = encode_properties(Basic.Properties(content_type="application/json", delivery_mode=1))
"""What Go's server sets on events and announcements (vectors item 14), marshalled."""

_FAILURES: tuple[type[BaseException], ...] = (*BACKEND_ERRORS, TransportError, TimeoutError)

_BATCH = 256
"""Most messages written at once."""

_ATTEMPTS = 5
"""Refusals of one message, with the link up, before it is dropped (a retry after a reconnect
does not count)."""


@dataclass(slots=True)
class _Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    attempts: int = 0


class Outbox:
    """Events and announcements waiting to be published, at most `size`."""

    def __init__(self, link: Link, *, size: int, publish_timeout: float) -> None:
        self._link = link
        self._size = size
        self._publish_timeout = publish_timeout
        self._queue: collections.deque[_Outgoing] = collections.deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._writing = False  # a batch is taken from the queue and not written yet
        self.dropped = 0
        """Messages dropped: the outbox was full, or the broker kept refusing them."""
        self._next_warning = 0.0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, exchange: str, routing_key: str, body: bytes) -> None:
        """Queue a message; with the outbox full, drop the oldest."""
        self._add(_Outgoing(exchange, routing_key, body))

    def _add(self, item: _Outgoing, *, front: bool = False) -> None:
        if len(self._queue) >= self._size:
            if front:
                dropped = item  # the one being retried is the oldest
            else:
                dropped = self._queue.popleft()
                self._queue.append(item)
            self._count_drop(dropped, "the outbox is full")
        elif front:
            self._queue.appendleft(item)
        else:
            self._queue.append(item)
        self._ready.set()

    def _count_drop(self, item: _Outgoing, why: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + 10.0
            log.warning(
                "dropped a message for %s: %s (%d dropped so far)",
                item.routing_key,
                why,
                self.dropped,
            )

    def start(self) -> None:
        """Start the pump (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._pump(), name="rabbitmq-outbox"
            )

    async def flush(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the outbox to empty, and its last batch to be
        written, while the link is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A short poll: flushing happens once, at close, and an event per sent message would
        # cost every publish for this one use.
        while (  # noqa: ASYNC110
            (self._queue or self._writing) and self._link.up and loop.time() < deadline
        ):
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop the pump; what is left is dropped (not counted: nobody will ask)."""
        self._stopped = True
        self._ready.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._queue.clear()

    async def _pump(self) -> None:
        while not self._stopped:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            try:
                await self._link.wait_connected()
            except ClientClosedError:
                # Closing: keep flushing while the connection lasts.
                if not self._link.up:
                    return
            await self._send_batch()

    async def _send_batch(self) -> None:
        """Publish what is queued (up to `_BATCH` messages), in order, as one write.

        Publishing one message at a time, each waiting for the socket to drain, made the pump
        the bottleneck of the event path: a loop turn or two per event, competing with
        everything else for the loop, plus pamqp's marshalling (see `_rabbitmq_frames`).
        """
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), _BATCH))]
        self._writing = True
        try:
            channel = await self._link.channel("events")
            frame_max = channel.connection.connection_tune.frame_max
            payload = b"".join(
                [
                    publish_frames(
                        channel.number,
                        exchange=item.exchange,
                        routing_key=item.routing_key,
                        body=item.body,
                        properties=_PROPERTIES,
                        frame_max=frame_max,
                    )
                    for item in batch
                ]
            )
            await write_frames(channel, payload, timeout=self._publish_timeout)
        except asyncio.CancelledError:
            self._put_back(batch)
            raise
        except _FAILURES as exc:
            self._put_back(batch[1:])
            await self._failed(batch[0], exc)
        finally:
            self._writing = False

    def _put_back(self, items: list[_Outgoing]) -> None:
        """Return unsent `items` to the front of the queue, in order."""
        for item in reversed(items):
            self._add(item, front=True)

    async def _failed(self, item: _Outgoing, exc: BaseException) -> None:
        if self._link.up:
            # The link is up, so the broker refused this message and closed the events
            # channel (reopened on the next attempt). An exchange that someone deleted is
            # declared again.
            item.attempts += 1
            if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
                try:
                    await self._link.declare_exchanges()
                except TransportError as declare_exc:
                    log.debug("could not declare the exchanges again: %s", declare_exc)
            if item.attempts >= _ATTEMPTS:
                self._count_drop(item, f"the broker refused it {item.attempts} times ({exc!r})")
                return
        log.debug("publishing to %s failed (%r); retrying", item.routing_key, exc)
        self._add(item, front=True)
        await asyncio.sleep(0.05)  # the link may be going down: let the supervisor see it
