"""The proxy backend: the shared interface's requests and events, over NATS or RabbitMQ.

Routing (docs/protocol.md, "Subjects", with Go's defects fixed):

- a key with a node goes to that node's proxy (`ari.<class>.<app>.<node>`), unicast;
- a create without a node goes to the application's create subject, where exactly one proxy
  takes it (queue group);
- anything else is a broadcast to the application's proxies (`ari.<class>.<app>`: the client's
  own application when the key has none; Go sprays every application's proxies), gathered until
  every live proxy in good standing answered (the cluster map says which: one that missed a
  gather is not waited for again until it comes back) or the window ends. Lists merge and
  de-duplicate all replies; other requests take the first success.

Events: one bus subscription per subject per connection, reference-counted and shared by every
subscription, demultiplexed locally by the `EventHub`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any

from .._exceptions import (
    AriProxyError,
    ConflictError,
    NoProxyError,
    NotFoundError,
    ProtocolError,
    RequestTimeout,
    UnknownKindError,
)
from ..api import JsonValue
from ..bus import BusMessage, BusState, BusSubscription, Transport
from ..events import (
    CallHandover,
    ConnectionGap,
    EventHub,
    Subscription,
    decode_event,
    gap_since,
)
from ..protocol import (
    KINDS,
    PAYLOAD_TYPES,
    Announcement,
    Invocation,
    Key,
    KindName,
    KindSpec,
    PresenceRole,
    Reply,
    Request,
    RequestClass,
    Response,
    Result,
    Retry,
    Subjects,
    check_token,
    decode_announcement,
    decode_presence,
    decode_response,
    decode_result,
    encode_request,
    reply_error,
)
from ..spec import HttpMethod
from ._cluster import Cluster, Node
from ._dialogs import DialogMemory
from ._listen import ListenGroup
from ._metrics import ClientMetrics

__all__ = ["ProxyBackend"]

logger = logging.getLogger(__name__)


class ProxyBackend:
    """Requests and events of one application over one bus connection.

    Args:
        transport: a connected bus transport.
        application: the client's application; keys without an app are sent for it.
        prefix: subject prefix (`ari.`).
        timeout: seconds per request (and per gather window).
        retries: extra attempts of a unicast request that timed out.
        ping_interval: seconds between pings that keep the cluster map fresh.
        node_max_age: seconds after which a silent proxy is forgotten.
        discovery_wait: how long a broadcast waits for a first announcement when the map has
            no proxy for the application yet (instead of returning an incomplete answer).
    """

    def __init__(
        self,
        transport: Transport,
        application: str,
        *,
        prefix: str = "ari.",
        timeout: float = 2.0,
        retries: int = 0,
        ping_interval: float = 10.0,
        node_max_age: float = 30.0,
        discovery_wait: float = 1.0,
        owns_transport: bool = True,
    ) -> None:
        check_token(application, "application")
        self.transport = transport
        self.subjects = Subjects(prefix)
        self.timeout = timeout
        self.retries = retries
        self.ping_interval = ping_interval
        self.discovery_wait = discovery_wait
        self.cluster = Cluster(max_age=node_max_age, application=application)
        self.bad_events = 0
        #: Event messages this connection received from the bus (dialogs, app, listen).
        self.events_received = 0
        #: Of those, the ones that came on a dialog subject.
        self.dialog_events_received = 0
        #: Requests by kind and outcome, retries, gaps, bus reconnects (`ProxyClient.metrics()`).
        self.metrics = ClientMetrics()
        self._application = application
        self._owns_transport = owns_transport
        self._hub = EventHub()
        self._memory = DialogMemory()
        self._listening = ListenGroup(
            transport, self.subjects, application, self.cluster, self.execute
        )
        self._bus_up = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._node_seen: dict[str, float] = {}
        self._rebinding: set[str] = set()
        self._pinged_on_leave = -1e18
        self._retained: dict[str, tuple[int, BusSubscription | None]] = {}
        self._retain_lock = asyncio.Lock()
        self._released: collections.deque[tuple[str, BusSubscription]] = collections.deque()
        self._reaper: asyncio.Task[None] | None = None
        self._announced = asyncio.Event()
        self._announce_sub: BusSubscription | None = None
        self._presence_sub: BusSubscription | None = None
        self._lost_at: float | None = None
        self._pings: set[asyncio.Task[None]] = set()
        self._pinger: asyncio.Task[None] | None = None
        self._closed = False

    # --- identity ----------------------------------------------------------------------------

    @property
    def application(self) -> str:
        return self._application

    @property
    def node(self) -> str:
        return ""

    @property
    def hub(self) -> EventHub:
        return self._hub

    # --- discovery ---------------------------------------------------------------------------

    def _on_bus_state(self, state: BusState) -> None:
        loop = asyncio.get_running_loop()
        if state is BusState.CONNECTED:
            self._bus_up.set()
            if self._lost_at is not None:
                lost_at, self._lost_at = self._lost_at, None
                self._report_gap(lost_at)
        elif state is BusState.RECONNECTING and self._lost_at is None:
            self._lost_at = loop.time()

    def _report_gap(self, lost_at: float) -> None:
        """Tell every subscription that events may have been lost while the bus was away."""
        gap = gap_since(lost_at, application=self._application, node="", source="bus")
        logger.warning("bus link back after %.1fs; events in the gap are lost", gap.duration)
        for dialog in {"", *self._retained}:
            self._hub.publish(gap, dialog)
        if not self._closed:
            self._spawn_ping()
            self._spawn(self._listening.confirm())  # were our calls handed over meanwhile?

    def _spawn_ping(self) -> None:
        async def ping() -> None:
            with contextlib.suppress(AriProxyError):
                await self.ping()

        self._pings.add(task := asyncio.get_running_loop().create_task(ping()))
        task.add_done_callback(self._pings.discard)

    async def start(self) -> None:
        """Listen to announcements, ping, and keep pinging (and pruning) periodically."""
        self.transport.on_state(self._on_bus_state)
        self.transport.on_state(self.metrics.on_bus_state)
        self.cluster.on_change(self._on_node_change)
        self._announce_sub = await self.transport.subscribe(
            self.subjects.announce, self._on_announcement
        )
        self._presence_sub = await self.transport.subscribe(
            self.subjects.presence(PresenceRole.PROXY), self._on_presence
        )
        # Wait (briefly) for the first announcement, so `nodes()` is useful right away.
        await self._discover(self.discovery_wait)
        self._pinger = asyncio.get_running_loop().create_task(self._ping_loop(), name="ari-ping")

    def _on_announcement(self, message: BusMessage) -> None:
        try:
            announcement: Announcement = decode_announcement(message.data)
        except ProtocolError as exc:
            logger.debug("ignoring a malformed announcement: %s", exc)
            return
        node, application = announcement.node, announcement.application
        self.cluster.seen(node, application, announcement.features, announcement.epoch)
        if application == self._application and self.cluster.get(node, application):
            # Kept for the nodes in the map only (it has a cap), the latest last.
            self._node_seen.pop(node, None)
            self._node_seen[node] = asyncio.get_running_loop().time()
            if len(self._node_seen) > self.cluster.max_nodes:
                del self._node_seen[next(iter(self._node_seen))]
            self._announced.set()

    async def ping(self) -> None:
        """Ask every proxy to announce itself."""
        await self.transport.ping(self.subjects.ping, b'{"kind":"","key":null}')

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            self.cluster.prune()
            try:
                await self.ping()
            except AriProxyError as exc:
                logger.warning("ping failed: %s", exc)

    async def _discover(self, limit: float) -> None:
        if self.cluster.count(self._application):
            return
        self._announced.clear()
        await self.ping()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(limit, self.discovery_wait)):
                await self._announced.wait()
                # The other proxies answer the same ping within moments: let them.
                await asyncio.sleep(min(0.05, self.discovery_wait / 10))

    # --- requests ----------------------------------------------------------------------------

    def _request(self, spec: KindSpec, key: Key, payload: Any, limit: float) -> bytes:
        fields: dict[str, Any] = {}
        if spec.payload is not None:
            if payload is None:
                # A Go server dereferences the payload without a nil check: always send one.
                payload = PAYLOAD_TYPES[spec.payload]()
            fields[spec.payload] = payload
        # The deadline lets a server refuse a request that reaches it after we gave up on it.
        deadline = time.time() + limit
        return encode_request(Request(kind=spec.name, key=key, deadline=deadline, **fields))

    async def execute(
        self,
        kind: KindName,
        key: Key | None,
        payload: Any = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Result:
        """`_execute`, counted in `metrics` by kind and outcome.

        Raises:
            ConflictError: the key's dialog is a call that was handed over to another instance
                (docs/handover.md): nothing is sent.
        """
        try:
            if key is not None and key.dialog and self._listening.handed_away(key.dialog):
                raise ConflictError(
                    f"{kind}: call {key.id} was handed over to another instance; this instance "
                    "no longer controls it"
                )
            result = await self._execute(kind, key, payload, timeout=timeout, retries=retries)
        except BaseException as exc:
            self.metrics.failed(kind, exc)
            raise
        self.metrics.succeeded(kind)
        return result

    async def _execute(
        self,
        kind: KindName,
        key: Key | None,
        payload: Any = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Result:
        """Send one request to the right proxies and return what they answered.

        Raises:
            UnknownKindError: `kind` is not in the kind table.
            NoProxyError: no proxy serves the application (or the node).
            RequestTimeout: no answer in time.
            AriError: the proxy (Asterisk) refused.
        """
        spec = KINDS.get(kind)
        if spec is None:
            raise UnknownKindError(f"unknown request kind {kind!r}")
        key = key or Key()
        if not key.app:
            key = Key(key.kind, key.id, key.node, key.dialog, self._application)
        limit = self.timeout if timeout is None else timeout
        # Only what is safe to run twice is sent again after a timeout (docs/protocol.md).
        tries = (
            (self.retries if retries is None else retries) if spec.retry is not Retry.NEVER else 0
        )
        if key.node or spec.cls is RequestClass.CREATE:
            subject = self.subjects.request(spec.cls, key.app, key.node)
            reply = await self._unicast(spec, subject, key, payload, limit, tries)
        elif spec.reply is Reply.KEYS:
            return await self._gather_all(
                spec, key, self._request(spec, key, payload, limit), limit
            )
        else:
            data = self._request(spec, key, payload, limit)
            reply = await self._gather_first(spec, key, data, limit)
        if not reply.ok:
            raise reply_error(reply)
        result = decode_result(spec, reply)
        if key.dialog:
            self._memory.record(spec, key, payload, result, self._application)
        return result

    async def _unicast(
        self, spec: KindSpec, subject: str, key: Key, payload: Any, limit: float, retries: int
    ) -> Response:
        for attempt in range(retries + 1):
            await self._bus_ready(limit)
            data = self._request(spec, key, payload, limit)
            try:
                raw = await self.transport.request(subject, data, timeout=limit)
            except RequestTimeout:
                if attempt == retries:
                    raise
                self.metrics.retries += 1
                logger.debug("request on %s timed out, retrying", subject)
                continue
            reply = decode_response(raw)
            if (
                attempt
                and spec.retry is Retry.BY_ID
                and isinstance(reply_error(reply), ConflictError)
            ):
                # Our own earlier attempt created it: "already exists" is the success it was.
                return Response(key=_created_key(spec, key, payload))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _bus_ready(self, limit: float) -> None:
        """Wait for the bus link (at most `limit`): a request written while it is down would
        wait in the bus client's buffer and could run after we gave up on it."""
        if self.transport.state is BusState.CONNECTED:
            return
        self._bus_up.clear()
        try:
            async with asyncio.timeout(limit):
                await self._bus_up.wait()
        except TimeoutError:
            raise RequestTimeout(f"the message bus is down (waited {limit:g}s)") from None

    async def _gather(
        self, spec: KindSpec, key: Key, data: bytes, limit: float, first_good: bool
    ) -> list[Response]:
        """Broadcast `data` and collect replies until every proxy in good standing answered
        (or, with `first_good`, one succeeded) or the window ends.

        A reply that names its node (a list's keys, a get's key) stands for that node; one
        that does not for any node waited for. A proxy waited for that did not answer is not
        waited for by the next gathers until it answers again (the cluster map's standing):
        one silent proxy costs one window, not one per request.
        """
        await self._discover(limit)
        app = key.app
        started = self.cluster.now()
        expected = self.cluster.expected(app)
        # When none is in good standing (a gather lost every reply: the bus, more likely than
        # every server), all are waited for, as they were before.
        everyone = not expected
        if everyone:
            expected = self.cluster.count(app)
        replies: list[Response] = []
        named: set[str] = set()  # the nodes waited for whose reply came
        others: set[str] = set()  # the nodes not waited for whose reply came
        anonymous = 0
        good = False

        def enough(raws: list[bytes]) -> bool:
            nonlocal anonymous, good
            for raw in raws[len(replies) :]:
                try:
                    reply = decode_response(raw)
                except ProtocolError as exc:
                    reply = Response(error=f"malformed reply: {exc}", code="bad_reply")
                replies.append(reply)
                good = good or reply.ok
                node = _answered_by(reply)
                if not node:
                    anonymous += 1
                elif everyone or self.cluster.waits_for(node, app):
                    named.add(node)
                else:
                    others.add(node)
            if first_good and good:
                return True
            return expected > 0 and len(named) + anonymous >= expected

        await self._bus_ready(limit)
        subject = self.subjects.request(spec.cls, app)
        raws = await self.transport.gather(subject, data, timeout=limit, enough=enough)
        complete = enough(raws)
        self.cluster.gathered(app, started, named | others, anonymous, complete=complete)
        if not replies:
            if expected == 0:
                raise NoProxyError(f"no proxy serves application {app!r}")
            raise RequestTimeout(f"{spec.name}: no proxy answered within {limit:g}s")
        return replies

    async def _gather_first(self, spec: KindSpec, key: Key, data: bytes, limit: float) -> Response:
        replies = await self._gather(spec, key, data, limit, first_good=True)
        for reply in replies:
            if reply.ok:
                return reply
        return _most_telling(replies)

    async def _gather_all(self, spec: KindSpec, key: Key, data: bytes, limit: float) -> Result:
        replies = await self._gather(spec, key, data, limit, first_good=False)
        good = [r for r in replies if r.ok]
        if not good:
            raise reply_error(_most_telling(replies))
        keys: list[Key] = []
        seen: set[Key] = set()
        for reply in good:
            # De-duplicate across replies (two proxies of one node both answer a broadcast),
            # never within one (a Go server's sound keys carry no id and all look alike).
            fresh = [item for item in reply.keys if item not in seen]
            keys.extend(fresh)
            seen.update(fresh)
        merged = Result(keys=keys)
        for reply in replies:
            if not reply.ok:
                logger.warning("%s: a proxy failed: %s", spec.name, reply.error)
        return merged

    async def raw_request(
        self,
        method: HttpMethod,
        path: str,
        *,
        path_params: Mapping[str, str],
        query: Mapping[str, object],
        body: JsonValue,
        timeout: float | None,
        retries: int | None,
    ) -> JsonValue:
        """Refused: the bus carries request kinds, and a server runs only kinds it can check
        (keys, applications, isolation: docs/security.md), so there is no kind for an
        arbitrary method and path (docs/client.md, "The escape hatch").

        Raises:
            UnknownKindError: always.
        """
        raise UnknownKindError(
            f"request({method!r}, {path[:100]!r}): calling ARI by method and path is for the "
            "native client only; through the proxy, use the request kinds (client.channels, "
            "..., or client.request(kind, key, payload))"
        )

    @asynccontextmanager
    async def download(
        self, key: Key, *, timeout: float | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A stored recording's file, as one chunk (the proxy sends it whole, within limits)."""
        result = await self.execute("RecordingStoredFile", key, timeout=timeout)

        async def chunks() -> AsyncIterator[bytes]:
            yield result.data or b""

        yield chunks()

    # --- events ------------------------------------------------------------------------------

    def _event_subject(self, dialog: str) -> str:
        # The dialog's events, or every event of the application: `<prefix>event.<app>.>`,
        # NATS-style as every transport takes it (RabbitMQ's binds it as `<...>.*.#`).
        return self.subjects.event_subscription(Key(app=self._application, dialog=dialog))

    def _handler(self, dialog: str) -> Any:
        hub = self._hub

        def deliver(message: BusMessage) -> None:
            self.events_received += 1
            if dialog:
                self.dialog_events_received += 1
            try:
                event = decode_event(message.data)
            except ProtocolError as exc:
                self.bad_events += 1
                logger.warning("ignoring a malformed event on %s: %s", message.subject, exc)
                return
            if type(event) is ConnectionGap:
                self.metrics.gaps += 1
            elif isinstance(event, CallHandover) and dialog:
                self._listening.lost(dialog, event)  # our call went to another instance
            hub.publish(event, dialog)

        return deliver

    async def retain(self, dialog: str) -> None:
        """Subscribe the event subject of `dialog` (or of the application) once per connection."""
        async with self._retain_lock:
            count, sub = self._retained.get(dialog, (0, None))
            if count == 0:
                # Released but not yet unsubscribed: take it back rather than subscribe twice
                # (two live subscriptions would deliver every event twice).
                pending = next((p for p in self._released if p[0] == dialog), None)
                if pending is not None:
                    self._released.remove(pending)
                    sub = pending[1]
                else:
                    sub = await self.transport.subscribe(
                        self._event_subject(dialog), self._handler(dialog)
                    )
            self._retained[dialog] = (count + 1, sub)

    def release(self, dialog: str) -> None:
        """Drop one reference; the last one unsubscribes in the background."""
        count, sub = self._retained.get(dialog, (0, None))
        if count > 1:
            self._retained[dialog] = (count - 1, sub)
            return
        self._retained.pop(dialog, None)
        self._memory.forget(dialog)
        self._listening.forget(dialog)
        if sub is None or self._closed:
            return
        # One reaper task handles every pending unsubscribe, however many are released at once.
        self._released.append((dialog, sub))
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        while self._released:
            dialog, sub = self._released.popleft()
            async with self._retain_lock:
                current = self._retained.get(dialog)
                if current is not None and current[1] is sub:
                    continue  # retained again meanwhile: the subscription is in use
                try:
                    await sub.unsubscribe()
                except AriProxyError as exc:
                    logger.debug("unsubscribe %s: %s", sub.subject, exc)

    @property
    def bus_subscriptions(self) -> int:
        """Event subjects currently subscribed on the bus."""
        return len(self._retained) + self._listening.subscriptions

    @property
    def instance(self) -> str:
        """This connection's instance ID in `listen()`."""
        return self._listening.instance

    async def listen(self, *, maxsize: int = 1000) -> Subscription:
        """The calls offered to this instance by the application's listen group (see
        `ListenGroup`): each is this instance's only once `take` says so."""
        return await self._listening.open(maxsize)

    async def take(self, key: Key) -> bool:
        """Take the offered call on `key` (channel, node, and the dialog to bind it to)."""
        return await self._listening.take(key)

    async def save_state(self, key: Key, state: bytes) -> None:
        """Keep `state` beside the call on `key` for its next owner (see `ListenGroup`)."""
        await self._listening.save_state(key, state)

    async def stop_taking(self) -> list[Key]:
        """Take no more calls; the keys of the calls this instance owns (see `ListenGroup`)."""
        return await self._listening.stop_taking()

    async def release_calls(self, keys: list[Key]) -> list[Key]:
        """Hand these calls over to the listen group (see `ListenGroup`)."""
        return await self._listening.release(keys)

    # --- servers that come and go ------------------------------------------------------------

    def _on_node_change(self, change: str, node: Node) -> None:
        if node.application != self._application or self._closed:
            return
        if change == "left":
            # A server that ever answered is news; a flood of made-up ones is not.
            log = logger.info if node.good_standing else logger.debug
            log("proxy left: node %s", node.node)
        elif change == "restarted" and node.node not in self._rebinding:
            # One rebind per node at a time: a forged epoch repeated costs one, not many.
            logger.warning("proxy restarted: node %s; binding its dialogs again", node.node)
            self._rebinding.add(node.node)
            self._spawn(self._rebind(node, self._node_seen.get(node.node, node.last_seen)))

    def _on_presence(self, message: BusMessage) -> None:
        try:
            presence = decode_presence(message.data)
        except ProtocolError:
            return
        if presence.role == PresenceRole.PROXY and presence.leaving:
            self.cluster.leave(presence.node, presence.application, presence.epoch)
            # A leaving notice may be forged: a ping soon lets a server that is still there
            # announce itself again (one ping a second at most, whatever the notices).
            now = asyncio.get_running_loop().time()
            if now - self._pinged_on_leave >= 1.0 and not self._closed:
                self._pinged_on_leave = now
                self._spawn_ping()

    async def _rebind(self, node: Node, last_seen: float) -> None:
        """A server came back as a new process: it lost our dialogs' bindings and the events
        since it was last heard (`last_seen`, loop time). Say so on every dialog with an entity
        there, and bind again."""
        try:
            bindings = self._memory.on_node(node.node)
            if "held-events" not in node.features:  # else Asterisk kept them for the new one
                gap = gap_since(
                    last_seen, application=self._application, node=node.node, source="proxy"
                )
                for dialog in ["", *{b.key.dialog for b in bindings}]:
                    self._hub.publish(gap, dialog)
            for binding in bindings:
                try:
                    await self.execute(binding.kind, binding.key, binding.payload, retries=1)
                except (NotFoundError, ConflictError):
                    self._memory.drop(binding)  # the entity is gone, or someone else's call
                except AriProxyError as exc:
                    logger.warning("could not bind %s again: %s", binding.key.id, exc)
        finally:
            self._rebinding.discard(node.node)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop pinging, unsubscribe everything, close the transport (when owned)."""
        if self._closed:
            return
        self._closed = True
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        if self._reaper is not None:
            with contextlib.suppress(Exception):
                await self._reaper
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._listening.close()
        subs = [s for _, s in self._retained.values() if s is not None]
        subs += [s for s in (self._announce_sub, self._presence_sub) if s is not None]
        self._retained.clear()
        for sub in subs:
            with contextlib.suppress(AriProxyError):
                await sub.unsubscribe()
        self._hub.close()
        if self._owns_transport:
            await self.transport.close()


def _answered_by(reply: Response) -> str:
    """The node a gather's reply came from: what our servers say in `node`, else (a Go server)
    the node of a get's key, or the one node of a list's keys ("" for an empty list, an
    error, data: Go's replies do not say)."""
    if reply.node:
        return reply.node
    if reply.key is not None:
        return reply.key.node
    if reply.keys:
        node = reply.keys[0].node
        # A server lists its own node's entities only: a reply naming several says nothing.
        if all(k.node == node for k in reply.keys):
            return node
    return ""


def _most_telling(replies: list[Response]) -> Response:
    """Of several failures, the one that says most: an entity found in the wrong state beats
    "not found" from the proxies that do not have it."""
    failures = [r for r in replies if not r.ok]
    for reply in failures:
        error = reply_error(reply)
        if not isinstance(error, NotFoundError | UnknownKindError):
            return reply
    return failures[0]


def _created_key(spec: KindSpec, key: Key, payload: Any) -> Key:
    """The key a create's reply carries, worked out from the request (its ID was ours)."""
    if spec.reply is Reply.KEY_RESULT and callable(spec.result_id):
        ident = spec.result_id(Invocation(spec, key, payload, key.app, key.node))
        return Key(spec.result, ident, key.node, "", key.app)
    return Key(key.kind or spec.entity, key.id, key.node, key.dialog, key.app)
