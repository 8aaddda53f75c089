"""Announcements: `{"node":..,"application":..}` on `<prefix>announce`, one per application.

Clients count the announcements they saw to know how many replies a broadcast gathers
(docs/protocol.md, "Announcements"). The server announces when it becomes ready, after every ARI
reconnect, on every ping and periodically, but only while its ARI connection is up (Go keeps
announcing while ARI is down and never at startup: docs/protocol.md, Go defect 15), so clients never
count a server that cannot answer.

Announcements are coalesced: at most one round (one per application) per `MIN_GAP` (100 ms),
however fast pings come. A ping that arrives while a round is due is answered by that round,
so every ping still gets an answer within about 100 ms, and a flood of pings costs the bus
no more than ten rounds a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from .._exceptions import AriProxyError
from .._version import __version__
from ..bus import BusMessage, Transport
from ..protocol import (
    Announcement,
    Presence,
    PresenceRole,
    Subjects,
    encode_announcement,
    encode_presence,
)
from ._counters import Counters
from ._logging import RateLimiter

__all__ = ["FEATURES", "HELD_EVENTS", "MIN_GAP", "Announcer"]

logger = logging.getLogger(__name__)

FEATURES = ("listen", "handover")
"""What our servers offer beyond Go's protocol, announced: `listen`, calls offered to listen
groups on `<prefix>listen.<app>.<node>` and taken with `ListenTake`; `handover`, calls of a
gone or draining owner offered again as `CallHandover`, with the state saved beside them
(`ListenSaveState`, `ListenRelease`; docs/handover.md)."""

HELD_EVENTS = "held-events"
"""Announced in outbound mode: Asterisk holds the events while no process listens, so a
restarted server publishes them (after its clients bound their dialogs again), and a client
needs no `ConnectionGap` for the restart (docs/transports.md)."""

MIN_GAP = 0.1
"""Seconds between two rounds of announcements at least."""


class Announcer:
    """Publishes the server's announcements.

    Args:
        bus: the message bus.
        subjects: the subject builder (prefix).
        applications: one announcement per application.
        node: the current Asterisk entity ID.
        is_up: whether ARI is connected (no announcement otherwise).
        counters: where to count.
        interval: seconds between periodic announcements.
        epoch: this server process's epoch, announced so that clients notice a restart.
        features: what the server offers (default `FEATURES`).
    """

    def __init__(
        self,
        bus: Transport,
        subjects: Subjects,
        applications: Sequence[str],
        *,
        node: Callable[[], str],
        is_up: Callable[[], bool],
        counters: Counters,
        interval: float = 60.0,
        epoch: str = "",
        features: Sequence[str] = FEATURES,
    ) -> None:
        self.bus = bus
        self.features = tuple(features)
        self.subjects = subjects
        self.applications = tuple(applications)
        self._node = node
        self._is_up = is_up
        self.counters = counters
        self.interval = interval
        self.epoch = epoch
        self._limiter = RateLimiter(30.0)
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._due: asyncio.Task[None] | None = None  # the coalesced round `soon` scheduled
        self._last = float("-inf")  # loop time of the last round
        self._lock = asyncio.Lock()

    async def announce(self) -> None:
        """Announce every application, if ARI is up: now, or as soon as `MIN_GAP` has passed
        since the last round. Failures are logged, not raised."""
        async with self._lock:
            wait = self._last + MIN_GAP - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._round()

    async def _round(self) -> None:
        if not self._is_up():
            return
        self._last = asyncio.get_running_loop().time()
        node = self._node()
        for app in self.applications:
            body = encode_announcement(
                Announcement(
                    node=node,
                    application=app,
                    features=self.features,
                    epoch=self.epoch,
                    version=__version__,
                )
            )
            try:
                await self.bus.publish(self.subjects.announce, body)
            except AriProxyError as exc:
                held = self._limiter.allow("announce")
                if held is not None:
                    logger.warning(
                        "could not announce: %s",
                        exc,
                        extra={"app": app, "node": node, "suppressed": held},
                    )
                return
            self.counters.announcements += 1
        logger.debug("announced", extra={"node": node, "apps": list(self.applications)})

    def soon(self) -> None:
        """Announce from a synchronous callback (a ping, a state change): one round within
        `MIN_GAP`, shared by every call until it starts."""
        if self._due is not None:
            return  # a round is due: it answers this call too
        task = asyncio.get_running_loop().create_task(self._coalesced(), name="announce")
        self._due = task
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _coalesced(self) -> None:
        try:
            async with self._lock:
                wait = self._last + MIN_GAP - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
                # From here on a new call schedules the next round: this one may have been
                # built before the call's reason (a ping) arrived.
                self._due = None
                await self._round()
        finally:
            if self._due is asyncio.current_task():
                self._due = None

    def on_ping(self, message: BusMessage) -> None:
        """A ping arrived: answer with announcements (the body does not matter)."""
        self.soon()

    def start(self) -> None:
        """Start the periodic announcements."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every(), name="announcer")

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.announce()

    async def leave(self) -> None:
        """Say on the bus that this server is stopping, so clients drop it at once (on a subject
        of ours: Go clients neither see nor need it)."""
        node = self._node()
        if not node:
            return
        for app in self.applications:
            body = encode_presence(
                Presence(
                    role=PresenceRole.PROXY,
                    application=app,
                    node=node,
                    epoch=self.epoch,
                    leaving=True,
                )
            )
            try:
                await self.bus.publish(self.subjects.presence(PresenceRole.PROXY, app), body)
            except AriProxyError as exc:
                logger.debug("could not say we are leaving: %s", exc)
                return

    async def stop(self) -> None:
        """Stop the periodic and pending announcements."""
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
