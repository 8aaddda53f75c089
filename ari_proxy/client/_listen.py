"""This connection's part in its application's listen group: offers taken one owner at a time.

Our servers offer each call that enters the application on `<prefix>listen.<app>.<node>`, where
the instances in `listen()` share a queue group; the offer is repeated until an instance takes
the call with `ListenTake`, which the server grants to the first instance only. So a call is
handed to the application here only once the server has said it is ours: a take refused as
`taken` (another instance was quicker, or took a repeated offer), or for a channel already
gone, is dropped without a word to the application, and an offer that cannot be taken for any
other reason is logged and skipped. Nothing an offer holds can end `listen()`.

Offers are accepted only from servers that announced themselves with the `listen` feature.
While a Go server (no such feature) is in the cluster, its StasisStart events come on the
application's event subject instead, taken in a queue group of its own; those calls are bound
with `ChannelSubscribe`, as Go's own clients do.

While listening, the instance says so every `heartbeat` seconds on
`<prefix>presence.listener.<app>` (and that it is leaving when it stops): servers repeat offers
only for applications that have listeners, and know its calls' owner is alive.

Handover (docs/handover.md): servers with the `handover` feature offer the calls of a gone
owner again as `CallHandover` events on the same subject, taken like any other offer; each is
told apart by its `handover_id`, so an instance that saw the call's first offer takes it too.
The owner keeps a small state beside each call (`save_state`), and `drain` hands every call it
owns over before the instance stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._exceptions import (
    AriProxyError,
    ClosedError,
    ConflictError,
    NoProxyError,
    NotFoundError,
    ProtocolError,
)
from ..bus import BusMessage, BusSubscription, Transport
from ..events import CallHandover, EventHub, Subscription, decode_event
from ..protocol import (
    Key,
    KindName,
    ListenState,
    ListenTake,
    Presence,
    PresenceRole,
    Result,
    Subjects,
    encode_presence,
    new_id,
)
from ..spec.models import StasisStart
from ._cluster import Cluster, Node

__all__ = ["ListenGroup"]

logger = logging.getLogger(__name__)

Execute = Callable[..., Awaitable[Result]]
"""The backend's `execute(kind, key, payload, *, timeout, retries)`."""

_REMEMBERED_OFFERS = 4096
"""Channels offered to this instance that it remembers, so a repeated offer is not handed on
twice."""

MAX_OWNED = 100_000
"""Calls this instance remembers owning (to release them when draining); beyond, the oldest is
forgotten (its server still hands it over when the instance leaves)."""

_OFFER_TYPES = ("StasisStart", "CallHandover")


class ListenGroup:
    """Offers of calls to this instance, taking them, and saying that it listens.

    Args:
        transport: the bus.
        subjects: the subject builder.
        application: the application listened to.
        cluster: the announced servers (offers from others are refused).
        execute: runs a request kind through the backend.
        heartbeat: seconds between presence messages.
    """

    def __init__(
        self,
        transport: Transport,
        subjects: Subjects,
        application: str,
        cluster: Cluster,
        execute: Execute,
        *,
        heartbeat: float = 1.0,
    ) -> None:
        self.transport = transport
        self.subjects = subjects
        self.application = application
        self.cluster = cluster
        self._execute = execute
        self.heartbeat = heartbeat
        self.instance = new_id("in")
        """This instance's name in take requests and presence messages."""
        self.hub = EventHub()
        self.offers = 0
        """Offers received (repeats included)."""
        self.ignored = 0
        """Offers refused: from a node that never announced itself, malformed, or repeated."""
        self.not_taken = 0
        """Offers another instance took first, or whose channel was gone."""
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._sub: BusSubscription | None = None
        self._legacy_sub: BusSubscription | None = None
        self._legacy_task: asyncio.Task[None] | None = None
        self._legacy_stale = False
        self._beat: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        # The calls this instance took, by the dialog they were bound to.
        self._owned: collections.OrderedDict[str, Key] = collections.OrderedDict()
        # Dialogs of calls handed over to another instance while this one still held them.
        self._lost: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._taking = 0
        self._takes_done = asyncio.Event()
        self._takes_done.set()
        self.draining = False
        """Set by `drain`: no call is taken any more."""

    @property
    def subscriptions(self) -> int:
        """Bus subscriptions held for listening."""
        return sum(s is not None for s in (self._sub, self._legacy_sub))

    async def open(self, maxsize: int) -> Subscription:
        """Start taking offers (once per connection) and return a subscription of them.

        Raises:
            ClosedError: the instance drained.
        """
        if self.draining:
            raise ClosedError("this connection drained: it takes no more calls")
        if self._sub is None:
            group = f"ari-proxy-listen-{self.application}"
            self._sub = await self.transport.subscribe(
                self.subjects.listen(self.application), self._deliver, group=group
            )
            self.cluster.on_change(self._on_node_change)
            await self._update_legacy()
            self._beat = asyncio.get_running_loop().create_task(self._say_here(), name="listen")
        return self.hub.subscribe(list(_OFFER_TYPES), maxsize=maxsize)

    # --- offers ------------------------------------------------------------------------------

    def _deliver(self, message: BusMessage, *, legacy: bool = False) -> None:
        try:
            event = decode_event(message.data)
        except ProtocolError:
            self.ignored += 1
            return
        handover = isinstance(event, CallHandover) and not legacy
        if not isinstance(event, StasisStart) and not handover:
            if not legacy:
                self.ignored += 1  # the listen subject carries offers only
            return  # the legacy subject carries every event of the application
        assert isinstance(event, StasisStart | CallHandover)
        channel = event.channel.id
        node = event.asterisk_id or ""
        if not channel or (handover and not self._hands_over(node)):
            self.ignored += 1
            return
        # Nodes started in the same second name their channels alike: an offer is its node's.
        offer = f"{node}/{channel}"
        if isinstance(event, CallHandover):
            offer = f"{offer}/{event.handover_id}"  # each handover is a new offer
        if legacy:
            if self._offers_from(node):
                return  # that node's server offers it on the listen subject
        elif not self._offers_from(node):
            self.ignored += 1  # a node that never announced itself: a forged or stale offer
            logger.debug("ignoring an offer from unannounced node %r", node)
            return
        self.offers += 1
        if offer in self._seen:
            self.ignored += 1  # a repeated offer of a call already handed on
            return
        self._seen[offer] = None
        while len(self._seen) > _REMEMBERED_OFFERS:
            self._seen.popitem(last=False)
        self.hub.publish(event)

    async def take(self, key: Key) -> bool:
        """Take the offered call on `key` (its channel, node and the new dialog): True when it
        is this instance's, False when it is not (logged unless another instance simply was
        quicker)."""
        legacy = not self._offers_from(key.node)
        kind: KindName = "ChannelSubscribe" if legacy else "ListenTake"
        payload = None if legacy else ListenTake(instance=self.instance)
        if self.draining:
            return False  # not ours: the offer is repeated to the others
        self._taking += 1
        self._takes_done.clear()
        try:
            await self._execute(kind, key, payload, retries=2)
        except (ConflictError, NotFoundError, NoProxyError) as exc:
            # Another instance was quicker, the channel is gone, or nobody serves the node (a
            # forged offer): nothing to tell.
            self.not_taken += 1
            logger.debug("call %s not taken: %s", key.id, exc)
            return False
        except AriProxyError as exc:
            self.not_taken += 1
            logger.warning("could not take call %s: %s", key.id, exc)
            return False
        finally:
            self._taking -= 1
            if not self._taking:
                self._takes_done.set()
        if not legacy:
            self._owned[key.dialog] = key
            while len(self._owned) > MAX_OWNED:
                self._owned.popitem(last=False)
        return True

    def lost(self, dialog: str, handover: CallHandover) -> None:
        """A `CallHandover` arrived on `dialog`: when it names this instance, the call is
        another instance's now, and requests in its dialog are refused from here on."""
        if handover.previous_owner == self.instance:
            self._lose(dialog, handover.channel.id, handover.reason)

    def _lose(self, dialog: str, channel: str, reason: str) -> None:
        self._owned.pop(dialog, None)
        self._lost[dialog] = None
        while len(self._lost) > MAX_OWNED:
            self._lost.popitem(last=False)
        logger.warning(
            "call %s was handed over to another instance (%s): no longer controlled here",
            channel,
            reason,
        )

    async def confirm(self) -> None:
        """After a bus gap: take each owned call again. One refused as `taken` was handed over
        while this instance was away (its `CallHandover` on the dialog was lost with the link),
        and is no longer controlled here."""
        for dialog, key in list(self._owned.items()):
            if not self._hands_over(key.node):
                continue
            try:
                await self._execute("ListenTake", key, ListenTake(instance=self.instance))
            except ConflictError:
                self._lose(dialog, key.id, "taken by another instance during a bus gap")
            except NotFoundError:
                self._owned.pop(dialog, None)  # the call ended meanwhile
            except AriProxyError as exc:
                logger.debug("could not confirm call %s: %s", key.id, exc)

    def handed_away(self, dialog: str) -> bool:
        """Whether the call of `dialog` was handed over to another instance (O(1))."""
        return dialog in self._lost

    def forget(self, dialog: str) -> None:
        """The call of `dialog` was closed by the application: not released when draining."""
        self._owned.pop(dialog, None)
        self._lost.pop(dialog, None)

    async def save_state(self, key: Key, state: bytes) -> None:
        """Keep `state` beside the call on its server, for its next owner.

        Raises:
            TooLargeError: over the server's `proxy.max_call_state` (4 KiB by default).
            ConflictError: the call is not this instance's (any more).
            NoProxyError: its server does not keep call state (a Go server, or an older one).
        """
        if not self._hands_over(key.node):
            raise NoProxyError(
                f"the server of node {key.node!r} does not keep call state (no handover "
                "feature: a Go server, or an older ari-proxy); see docs/handover.md"
            )
        payload = ListenState(instance=self.instance, state=bytes(state))
        await self._execute("ListenSaveState", key, payload, retries=1)

    async def stop_taking(self) -> list[Key]:
        """Take no more calls (draining); return the keys of the calls this instance owns."""
        self.draining = True
        if self._sub is not None:
            sub, self._sub = self._sub, None
            with contextlib.suppress(AriProxyError):
                await sub.unsubscribe()
        await self._takes_done.wait()
        self.hub.close()
        return list(self._owned.values())

    async def release(self, keys: list[Key]) -> list[Key]:
        """Hand these calls over to the group now; return those their servers accepted."""
        released = []
        for key in keys:
            if not self._hands_over(key.node):
                continue  # an older server of ours: it cannot hand calls over
            try:
                await self._execute(
                    "ListenRelease", key, ListenTake(instance=self.instance), retries=1
                )
                released.append(key)
            except (ConflictError, NotFoundError, NoProxyError) as exc:
                logger.debug("call %s not released: %s", key.id, exc)  # ended, or not ours
            except AriProxyError as exc:
                # Its server hands it over anyway when this instance's presence ends.
                logger.warning("could not release call %s: %s", key.id, exc)
            self._owned.pop(key.dialog, None)
        return released

    def _hands_over(self, node: str) -> bool:
        """Whether `node`'s server announced that it hands calls over (O(1))."""
        known = self.cluster.get(node, self.application) if node else None
        return known is not None and "handover" in known.features

    def _offers_from(self, node: str) -> bool:
        """Whether `node` announced that it offers calls of the application (O(1))."""
        known = self.cluster.get(node, self.application) if node else None
        return known is not None and "listen" in known.features

    # --- Go servers --------------------------------------------------------------------------

    def _on_node_change(self, change: str, node: Node) -> None:
        # Called once per change, a flood of announcements included: one task at a time
        # catches up with all of them.
        if node.application != self.application or self._closed:
            return
        self._legacy_stale = True
        if self._legacy_task is None or self._legacy_task.done():
            self._legacy_task = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        while self._legacy_stale and not self._closed:
            self._legacy_stale = False
            try:
                await self._update_legacy()
            except AriProxyError as exc:
                logger.warning("could not follow the Go servers' calls: %s", exc)

    async def _update_legacy(self) -> None:
        needed = self.cluster.count(self.application, without="listen") > 0
        async with self._lock:
            if needed and self._legacy_sub is None:
                self._legacy_sub = await self.transport.subscribe(
                    self.subjects.event_subscription(Key(app=self.application)),
                    lambda message: self._deliver(message, legacy=True),
                    group=f"ari-proxy-listen-legacy-{self.application}",
                )
            elif not needed and self._legacy_sub is not None:
                sub, self._legacy_sub = self._legacy_sub, None
                with contextlib.suppress(AriProxyError):
                    await sub.unsubscribe()

    # --- presence ----------------------------------------------------------------------------

    async def _say_here(self) -> None:
        while True:
            await self._presence(leaving=False)
            await asyncio.sleep(self.heartbeat)

    async def _presence(self, *, leaving: bool) -> None:
        body = encode_presence(
            Presence(
                role=PresenceRole.LISTENER,
                application=self.application,
                instance=self.instance,
                interval=self.heartbeat,
                leaving=leaving,
            )
        )
        try:
            await self.transport.publish(
                self.subjects.presence(PresenceRole.LISTENER, self.application), body
            )
        except AriProxyError as exc:
            logger.debug("presence not sent: %s", exc)

    async def close(self) -> None:
        """Stop listening: say so, and release the subscriptions."""
        if self._closed:
            return
        self._closed = True
        tasks: list[asyncio.Task[Any]] = [t for t in (self._beat, self._legacy_task) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._beat is not None:
            await self._presence(leaving=True)
        for sub in (self._sub, self._legacy_sub):
            if sub is not None:
                with contextlib.suppress(AriProxyError):
                    await sub.unsubscribe()
        self._sub = self._legacy_sub = None
        self.hub.close()
