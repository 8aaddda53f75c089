"""Local fan-out of events to bounded subscriptions.

Whatever reads events calls `EventHub.publish` for each one. `publish` never waits: each
matching `Subscription` has its own bounded queue, and a full queue applies the subscription's
`Overflow` policy and counts the drop. The reader therefore keeps reading however slow a
subscriber is.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable, Iterable, Iterator

from .._exceptions import ClientClosedError, SubscriptionOverflowError
from ..protocol import Key
from ..spec import Message
from ._decode import event_keys, event_type

__all__ = ["EventHub", "Overflow", "Subscription"]

logger = logging.getLogger(__name__)


class Overflow(enum.Enum):
    """What a subscription does when its queue is full and another event arrives."""

    DROP_NEWEST = "drop_newest"
    """Keep the queued events, drop the new one, count it (default)."""
    DROP_OLDEST = "drop_oldest"
    """Drop the oldest queued event to make room, count it."""
    CLOSE = "close"
    """Close the subscription: the next read raises `SubscriptionOverflowError`."""


class Subscription:
    """A filtered stream of events: an async iterator and an async context manager.

    ```python
    async with client.subscribe("StasisStart") as events:
        async for event in events:
            ...
    ```

    Attributes:
        dropped: events this subscription lost to its `Overflow` policy.
        delivered: events put in its queue.
    """

    def __init__(
        self,
        hub: EventHub,
        types: frozenset[str] | None,
        key: Key | None,
        *,
        maxsize: int,
        overflow: Overflow,
        where: Callable[[Message], bool] | None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.types = types
        self.key = key
        self.maxsize = maxsize
        self.overflow = overflow
        self.where = where
        self.dropped = 0
        self.delivered = 0
        self._hub = hub
        self._queue: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: BaseException | None = None
        self._on_close: list[Callable[[Subscription], None]] = []

    @property
    def closed(self) -> bool:
        """Whether the subscription no longer receives events."""
        return self._closed is not None

    def matches(self, event: Message, etype: str, dialog: str, keys: list[Key] | None) -> bool:
        """Whether `event` (of type `etype`, delivered on `dialog`) is for this subscription."""
        if self.types is not None and etype not in self.types:
            return False
        key = self.key
        if key is not None:
            if key.dialog != dialog:
                return False
            if key.id:
                if keys is None:
                    keys = event_keys(event, dialog)
                if not any(key.match(k) for k in keys):
                    return False
            elif not key.match(
                Key(node=event.asterisk_id or "", app=getattr(event, "application", ""))
            ):
                return False
        elif dialog:
            return False
        return self.where is None or self.where(event)

    def offer(self, event: Message) -> None:
        """Queue `event` without waiting; apply the overflow policy when full."""
        if self._closed is not None:
            return
        if len(self._queue) >= self.maxsize:
            self.dropped += 1
            self._hub.dropped += 1
            if self.overflow is Overflow.DROP_NEWEST:
                return
            if self.overflow is Overflow.DROP_OLDEST:
                self._queue.popleft()
            else:
                logger.warning("subscription %r overflowed (%d queued): closed", self, self.maxsize)
                # The next read must raise, as documented: a reader that fell behind learns it
                # lost events before it handles stale ones.
                self._queue.clear()
                self._close(SubscriptionOverflowError(f"subscription fell {self.maxsize} behind"))
                return
        self._queue.append(event)
        self.delivered += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def qsize(self) -> int:
        """Events waiting to be read."""
        return len(self._queue)

    async def next(self, timeout: float | None = None) -> Message:
        """Wait for the next event.

        Raises:
            TimeoutError: nothing arrived within `timeout` seconds.
            ClientClosedError: the subscription (or its client) was closed.
            SubscriptionOverflowError: it was closed by the `CLOSE` overflow policy.
        """
        while not self._queue:
            if self._closed is not None:
                raise self._closed
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.next()
        except ClientClosedError:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving events; queued events can still be read, then iteration ends."""
        self._close(ClientClosedError("subscription closed"))

    def _close(self, reason: BaseException) -> None:
        if self._closed is not None:
            return
        self._closed = reason
        self._hub._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        for callback in self._on_close:
            callback(self)
        self._on_close.clear()

    def __repr__(self) -> str:
        types = ",".join(sorted(self.types)) if self.types else "*"
        queued, dropped = len(self._queue), self.dropped
        return f"<Subscription {types} key={self.key} queued={queued} dropped={dropped}>"


class EventHub:
    """Fans events out to subscriptions. `publish` is synchronous and never waits.

    Subscriptions for one entity are indexed by entity ID, the rest by event type, so the cost of
    an event does not grow with the number of calls in progress.

    Attributes:
        published: events handed to `publish`.
        dropped: events lost to full subscription queues, over all subscriptions.
    """

    def __init__(self) -> None:
        self.published = 0
        self.dropped = 0
        self._by_entity: dict[str, list[Subscription]] = {}
        self._by_type: dict[str, list[Subscription]] = {}
        self._any: list[Subscription] = []

    def subscribe(
        self,
        types: Iterable[str] | None = None,
        key: Key | None = None,
        *,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> Subscription:
        """Create a subscription for `types` (all when None) of the entity `key` (any when None)."""
        wanted = frozenset(types) if types is not None else None
        sub = Subscription(self, wanted, key, maxsize=maxsize, overflow=overflow, where=where)
        for bucket in self._buckets(sub):
            bucket.append(sub)
        return sub

    def _buckets(self, sub: Subscription) -> Iterator[list[Subscription]]:
        if sub.key is not None and sub.key.id:
            yield self._by_entity.setdefault(sub.key.id, [])
        elif sub.types is None:
            yield self._any
        else:
            for etype in sub.types:
                yield self._by_type.setdefault(etype, [])

    def _remove(self, sub: Subscription) -> None:
        if sub.key is not None and sub.key.id:
            self._discard(self._by_entity, sub.key.id, sub)
        elif sub.types is None:
            if sub in self._any:
                self._any.remove(sub)
        else:
            for etype in sub.types:
                self._discard(self._by_type, etype, sub)

    @staticmethod
    def _discard(index: dict[str, list[Subscription]], name: str, sub: Subscription) -> None:
        bucket = index.get(name)
        if bucket is not None:
            if sub in bucket:
                bucket.remove(sub)
            if not bucket:
                del index[name]

    @property
    def subscriptions(self) -> int:
        """Open subscriptions."""
        ids = {id(s) for bucket in self._by_entity.values() for s in bucket}
        ids.update(id(s) for bucket in self._by_type.values() for s in bucket)
        ids.update(id(s) for s in self._any)
        return len(ids)

    def publish(self, event: Message, dialog: str = "") -> int:
        """Offer `event` to every matching subscription; return how many took it."""
        self.published += 1
        etype = event_type(event)
        keys: list[Key] | None = None
        targets: list[Subscription] = []
        if self._by_entity:
            keys = event_keys(event, dialog)
            for key in keys:
                targets.extend(self._by_entity.get(key.id, ()))
        targets.extend(self._by_type.get(etype, ()))
        targets.extend(self._any)
        taken = 0
        seen: set[int] = set()
        for sub in targets:
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            if sub.matches(event, etype, dialog, keys):
                sub.offer(event)
                taken += 1
        return taken

    def close(self, reason: BaseException | None = None) -> None:
        """Close every subscription."""
        subs = {id(s): s for bucket in self._by_entity.values() for s in bucket}
        subs.update({id(s): s for bucket in self._by_type.values() for s in bucket})
        subs.update({id(s): s for s in self._any})
        for sub in subs.values():
            sub._close(reason or ClientClosedError("client closed"))
