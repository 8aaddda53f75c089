"""Event publication: every ARI event on the bus, plus one copy per dialog bound to it.

The ARI WebSocket reader hands each frame to `EventPublisher.offer`, which never waits: frames
go to a bounded queue and, when it is full, the oldest is dropped and counted (Asterisk drops a
reader that stalls, so the reader must not wait on the bus). One task drains the queue in
order: it publishes Asterisk's own bytes (with `application` and `asterisk_id` filled in only
when Asterisk left them out) on `<prefix>event.<app>.<node>`, then a copy with `dialog` set on
`<prefix>dialogevent.<dialog>` for each dialog bound to one of the event's entities, once per
dialog (Go sends duplicates: docs/protocol.md, Go defect 11). Event types the models do not know and
events without entities are published too (Go drops them: docs/protocol.md, Go defects 2 and 3).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence

import msgspec

from .._exceptions import AriProxyError
from ..bus import BusState, Transport
from ..events import decode_event, route_event
from ..protocol import DialogRouter, ProtocolError, Subjects, stamp_event, valid_token, with_dialog
from ._counters import Counters
from ._logging import RateLimiter
from ._offers import CallOffers

__all__ = ["EventPublisher"]

logger = logging.getLogger(__name__)


class _Channel(msgspec.Struct):
    id: str = ""


class _Head(msgspec.Struct):
    """The members of an event the publisher needs; the rest stays raw."""

    type: str = ""
    application: str = ""
    channel: _Channel | None = None


# Events that end a call's life in the application (its offer and its owner end with them).
_CALL_ENDS = frozenset({"StasisEnd", "ChannelDestroyed"})


_head = msgspec.json.Decoder(_Head)


class EventPublisher:
    """Publishes ARI events from a bounded queue.

    Args:
        bus: the message bus.
        subjects: the subject builder (prefix).
        router: dialog bindings; bindings of an entity end with its last event.
        applications: the server's applications; an event without a usable `application` is
            published under the first.
        node: the current Asterisk entity ID.
        counters: where to count.
        queue_size: most frames held; beyond it the oldest is dropped.
        offers: where StasisStart events are offered to listen groups (and calls end); without
            it, a StasisStart is published once on the listen subject.
    """

    def __init__(
        self,
        bus: Transport,
        subjects: Subjects,
        router: DialogRouter,
        *,
        applications: Sequence[str],
        node: Callable[[], str],
        counters: Counters,
        queue_size: int = 10_000,
        offers: CallOffers | None = None,
    ) -> None:
        self.bus = bus
        self.offers = offers
        self.subjects = subjects
        self.router = router
        self.applications = tuple(applications)
        self._node = node
        self.counters = counters
        self.queue_size = queue_size
        self._queue: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._bus_up = asyncio.Event()
        self._released = asyncio.Event()
        self._released.set()
        self._limiter = RateLimiter(10.0)
        self._task: asyncio.Task[None] | None = None
        if bus.state is BusState.CONNECTED:
            self._bus_up.set()
        bus.on_state(self._on_bus_state)

    @property
    def queued(self) -> int:
        """Frames waiting to be published."""
        return len(self._queue)

    def offer(self, frame: str | bytes) -> None:
        """Queue one WebSocket frame; never waits. Drops the oldest frame when full."""
        self.counters.events_received += 1
        queue = self._queue
        if len(queue) >= self.queue_size:
            queue.popleft()
            self.counters.events_dropped += 1
            held = self._limiter.allow("dropped")
            if held is not None:
                logger.warning(
                    "event queue full: dropped the oldest event (%d in all so far)",
                    self.counters.events_dropped,
                    extra={"queue_size": self.queue_size, "suppressed": held},
                )
        queue.append(frame.encode() if isinstance(frame, str) else frame)
        self._wakeup.set()

    def hold(self) -> None:
        """Queue events without publishing them until `release()` (a restarted server in
        outbound mode, while its clients bind their dialogs again)."""
        self._released.clear()

    def release(self) -> None:
        """Publish again, what was held first."""
        self._released.set()

    @property
    def holding(self) -> bool:
        """Whether events are held (`hold()`)."""
        return not self._released.is_set()

    def _on_bus_state(self, state: BusState) -> None:
        if state is BusState.CONNECTED:
            self._bus_up.set()
        else:
            self._bus_up.clear()

    def start(self) -> None:
        """Start the publishing task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="publisher")

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self._bus_up.is_set():
                # Hold events while the bus is down: the queue absorbs the outage (dropping the
                # oldest when it must), and nothing is thrown away just to fail publishing.
                await self._bus_up.wait()
            if not self._released.is_set():
                await self._released.wait()
            await self.publish(queue.popleft())

    async def publish(self, raw: bytes) -> None:
        """Publish one event and its dialog copies (counting failures; never raises)."""
        try:
            head = _head.decode(raw)
            app = head.application if valid_token(head.application) else self.applications[0]
            node = self._node()
            data = stamp_event(raw, app, node)
            subject = self.subjects.event(app, node)
        except (msgspec.DecodeError, ProtocolError) as exc:
            self.counters.bad_frames += 1
            held = self._limiter.allow("bad-frame")
            if held is not None:
                logger.warning(
                    "ignoring an ARI frame that is not an event: %s",
                    str(exc)[:200],
                    extra={"suppressed": held},
                )
            return
        if await self.send(subject, data):
            self.counters.events_published += 1
        channel = head.channel.id if head.channel is not None else ""
        if head.type == "StasisStart":
            # Also offered on the listen subject, where clients distributing calls take each
            # StasisStart without receiving every other event of the application.
            if self.offers is not None:
                await self.offers.offer(app, channel, data)
            else:
                await self.send(self.subjects.listen(app, node), data)
        elif head.type in _CALL_ENDS and self.offers is not None:
            self.offers.ended(channel, app if head.type == "StasisEnd" else "")
        if not len(self.router):
            return
        try:
            event = decode_event(raw)
        except ProtocolError:  # published above; it just cannot be routed
            return
        for dialog in route_event(self.router, event):
            if await self.send(self.subjects.dialog_event(dialog), with_dialog(data, dialog)):
                self.counters.dialog_events_published += 1

    async def send(self, subject: str, data: bytes) -> bool:
        """Publish one message; False (counted and logged, rate-limited) when it failed."""
        try:
            await self.bus.publish(subject, data)
        except AriProxyError as exc:
            self.counters.events_failed += 1
            held = self._limiter.allow("publish-failed")
            if held is not None:
                logger.warning(
                    "could not publish an event: %s",
                    exc,
                    extra={"subject": subject, "error": str(exc), "suppressed": held},
                )
            return False
        return True

    async def flush(self, timeout: float) -> int:
        """Stop the task, then publish what is queued for at most `timeout` seconds; return how
        many events were left unpublished."""
        await self.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        queue = self._queue
        try:
            async with asyncio.timeout(timeout):
                while queue and loop.time() < deadline:
                    if not self._bus_up.is_set():
                        await self._bus_up.wait()
                    await self.publish(queue.popleft())
        except TimeoutError:
            pass
        left = len(queue)
        queue.clear()
        return left

    async def stop(self) -> None:
        """Stop the publishing task (queued events stay queued)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
