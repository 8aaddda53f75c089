"""Events: decoding that never loses one, and local fan-out to bounded subscriptions.

Whatever reads events (the ARI WebSocket in the native client, bus subscriptions in the proxy
client) calls `EventHub.publish` for each one. `publish` never waits: each matching
`Subscription` has its own bounded queue, and a full queue applies the subscription's `Overflow`
policy and counts the drop. The reader therefore keeps reading however slow a subscriber is.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._exceptions import ClientClosedError, ProtocolError, SubscriptionOverflowError
from ..ari._decoding import clear_zero_models, convert_lenient
from ..ari._models import EVENT_ENTITIES, EVENT_TYPES, AnyMessage, Event, Message
from ..protocol import Key, format_go_datetime

__all__ = [
    "ConnectionGap",
    "EventHub",
    "Overflow",
    "Subscription",
    "UnknownEvent",
    "decode_event",
    "event_keys",
    "event_type",
    "gap_since",
]

logger = logging.getLogger(__name__)

_dict_decoder = msgspec.json.Decoder(dict[str, Any])


class UnknownEvent(Event, tag="__unknown__"):
    """An event whose type (or content) the generated models do not know.

    It is delivered like any other: `type` is the type Asterisk sent and `raw` the whole JSON, so
    an event added in a newer Asterisk reaches the application instead of being dropped.
    """


class ConnectionGap(Event, tag="ConnectionGap"):
    """Synthetic: the event stream was interrupted, so events may have been missed.

    Emitted after a reconnect: of the ARI WebSocket (by the native client, and by our proxy
    servers, which publish it to the application and to every dialog), or of the bus (by the
    proxy client). Entities that changed during the gap (channels hung up, playbacks finished)
    produced events nobody saw; re-read what matters. Go peers ignore the type.
    """

    source: str = ""
    """What reconnected: `ari` or `bus`."""
    started: float = 0.0
    """When the stream was lost (Unix time, seconds)."""
    ended: float = 0.0
    """When events flowed again (Unix time, seconds)."""
    previous_node: str = ""
    """Entity ID of the Asterisk before the gap (differs from `asterisk_id` after a swap)."""

    @property
    def duration(self) -> float:
        """Seconds without events."""
        return self.ended - self.started


def gap_since(lost_at: float, *, application: str, node: str, source: str) -> ConnectionGap:
    """A `ConnectionGap` from `lost_at` (the running loop's clock) until now, in Unix time."""
    now = time.time()
    return ConnectionGap(
        application=application,
        asterisk_id=node,
        timestamp=format_go_datetime(datetime.now(UTC)),
        source=source,
        started=now - (asyncio.get_running_loop().time() - lost_at),
        ended=now,
    )


# Asterisk's messages, and the gap notices our servers publish.
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(AnyMessage | ConnectionGap)
_MESSAGE_TYPES: dict[str, type[Message]] = {**EVENT_TYPES, "ConnectionGap": ConnectionGap}


def event_type(event: Message) -> str:
    """The ARI `type` of a decoded message (for `UnknownEvent`, the type Asterisk sent)."""
    explicit = event.__dict__.get("_type")
    if explicit is not None:
        return str(explicit)
    return str(event.__struct_config__.tag)


def decode_event(data: bytes | str) -> Message:
    """Decode one ARI message; unknown types and unexpected shapes become `UnknownEvent`.

    Events re-encoded by a Go server (zero values for absent objects) decode like Asterisk's own
    (see `ari_proxy.ari._decoding`). The original JSON is kept as `_raw` on the returned object
    (see `raw_event`).

    Raises:
        ProtocolError: the data is not a JSON object with a string `type`.
    """
    try:
        event: Message = clear_zero_models(_decoder.decode(data))
    except msgspec.ValidationError:
        event = _decode_reshaped(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"event is not valid JSON: {exc}") from None
    event.__dict__["_raw"] = data
    return event


def _decode_reshaped(data: bytes | str) -> Message:
    """The slow path of `decode_event`: Go's zero values, or a type the models do not know."""
    try:
        body = _dict_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"event is not a JSON object: {exc}") from None
    kind = body.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("event has no string 'type'") from None
    model = _MESSAGE_TYPES.get(kind)
    if model is not None:
        try:
            event: Message = convert_lenient(body, model)
        except msgspec.ValidationError:
            pass
        else:
            event.__dict__["_body"] = body
            return event
    event = UnknownEvent(
        application=str(body.get("application") or ""),
        timestamp=str(body.get("timestamp") or ""),
        asterisk_id=body.get("asterisk_id") if isinstance(body.get("asterisk_id"), str) else None,
    )
    event.__dict__["_type"] = kind
    event.__dict__["_body"] = body
    return event


def raw_event(event: Message) -> dict[str, Any]:
    """The event exactly as received, as a dict (every field, known to the models or not)."""
    body = event.__dict__.get("_body")
    if body is None:
        raw = event.__dict__.get("_raw")
        body = _dict_decoder.decode(raw) if raw is not None else msgspec.to_builtins(event)
        event.__dict__["_body"] = body
    return dict(body)


# Entity model -> (key kind, attribute holding the id).
_ENTITY_ID = {
    "Channel": ("channel", "id"),
    "Bridge": ("bridge", "id"),
    "Playback": ("playback", "id"),
    "LiveRecording": ("liverecording", "name"),
    "DeviceState": ("devicestate", "name"),
}
# For events the models do not know: field name -> key kind, guessed from ARI's naming.
_FIELD_KIND = {
    "channel": "channel",
    "bridge": "bridge",
    "playback": "playback",
    "recording": "liverecording",
    "device_state": "devicestate",
}


def _entity_ids(event: Message) -> Iterator[tuple[str, str]]:
    if isinstance(event, UnknownEvent):
        body = event.__dict__.get("_body") or {}
        for field, kind in _FIELD_KIND.items():
            value = body.get(field)
            if isinstance(value, dict):
                ident = value.get("name" if kind in ("liverecording", "devicestate") else "id")
                if isinstance(ident, str) and ident:
                    yield kind, ident
        return
    for field, model in EVENT_ENTITIES.get(event_type(event), ()):
        value = getattr(event, field, None)
        if value is None:
            continue
        if model == "Endpoint":
            if value.technology and value.resource:
                yield "endpoint", f"{value.technology}/{value.resource}"
            continue
        spec = _ENTITY_ID.get(model)
        if spec is None:
            continue
        ident = getattr(value, spec[1], "")
        if ident:
            yield spec[0], ident
        if model == "Bridge":
            # As in Go: a bridge event concerns every channel in the bridge too.
            for member in value.channels:
                yield "channel", member


def event_keys(event: Message, dialog: str = "") -> list[Key]:
    """The keys of the entities an event concerns, with the event's node and application."""
    node = event.asterisk_id or ""
    app = getattr(event, "application", "") or ""
    seen: set[tuple[str, str]] = set()
    keys = []
    for kind, ident in _entity_ids(event):
        if (kind, ident) not in seen:
            seen.add((kind, ident))
            keys.append(Key(kind, ident, node, dialog, app))
    return keys


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
