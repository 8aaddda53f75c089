"""Calls offered to an application's listen group, until one instance has taken each.

Every StasisStart of an application is offered on `<prefix>listen.<app>.<node>`, where the
instances in `listen()` share a queue group. The instance that takes the call answers with a
`ListenTake` request, which binds the channel to its dialog; until one does, the offer is
repeated with backoff for up to `deadline` seconds (an instance may have been reconnecting, or
may have died with the offer in hand), and then the fallback runs: the call is hung up or sent
on in the dialplan, and a warning names the channel. Exactly one instance owns a call: the first
take wins, a take by any other instance is refused as `taken`, and a repeated take by the owner
(its reply was lost) is granted again.

Offers are repeated only for applications that have instances in `listen()`: each instance
says so every second or so on `<prefix>presence.listener.<app>`. An application whose
instances only subscribe to events gets each StasisStart published once, as Go does, and no
fallback ever runs on its calls.

After a restart the server knows no owners: it waits `resume_grace` seconds for the owners of
live calls to take them again (clients do when they see the server's new epoch), then offers
the channels still in Stasis that nobody took. After its ARI WebSocket comes back it does the
same: Asterisk threw away the StasisStart of every call that arrived in the gap.

Handover (docs/handover.md): the owner of each call is known by its instance ID, and its
presence messages say it is alive. When an owner falls silent for `liveness_timeout` seconds
(or twice its own interval, if longer), says it is leaving, or releases a call (draining), its
calls are offered again as `CallHandover` events: the channel and its bridges as Asterisk has
them now, the previous owner, the reason, and the last state the owner saved beside the call
(`ListenSaveState`, at most `max_state` bytes). The first instance to take one becomes its
owner; the previous owner cannot take it back. The take moves the old dialog's bindings to the
new owner's dialog, so the call's events (and those of what the old owner bound beside it)
follow. Nobody within `deadline` seconds: the fallback runs. While this server's own bus link
is down, nobody is judged.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .._exceptions import AriProxyError, TooLargeError
from ..protocol import (
    MAX_CALL_STATE,
    Presence,
    PresenceRole,
    Subjects,
    format_go_datetime,
    new_id,
    with_dialog,
)
from ._handover import Snapshot, handover_event
from ._logging import RateLimiter

__all__ = [
    "CallOffers",
    "Fallback",
    "HandoverReason",
    "Listeners",
    "TakeVerdict",
    "stasis_start",
]

_RECENTLY_ENDED = 10_000
"""Calls remembered as ended, so that a listing older than their end cannot offer them."""

logger = logging.getLogger(__name__)

MAX_LISTENERS_PER_APP = 1024
"""Listener instances remembered per application; beyond, the stalest is forgotten."""


class HandoverReason(enum.StrEnum):
    """Why a call is offered again (`CallHandover.reason`)."""

    LOST = "lost"
    """Its owner's presence fell silent past the liveness timeout."""
    LEFT = "left"
    """Its owner said it stopped listening."""
    DRAIN = "drain"
    """Its owner released it (`client.drain()`)."""


class TakeVerdict(enum.Enum):
    """What a `ListenTake` gets."""

    OFFERED = "offered"
    """The taker owns the call, which this server offered (or already granted to it): the
    channel is known to be in Stasis."""
    GRANTED = "granted"
    """The taker owns a call this server did not offer (it restarted, or the take is late):
    the channel must be checked."""
    TAKEN = "taken"
    """Another instance owns it."""


@dataclass(frozen=True, slots=True)
class Fallback:
    """What happens to a call nobody took within the deadline.

    `hangup` (the default) ends it with `reason`; `continue` sends it on in the dialplan at
    `context`, `extension`, `priority` (Asterisk's next priority when left empty).
    """

    action: str = "hangup"
    reason: str = "normal"
    context: str = ""
    extension: str = ""
    priority: int = 0

    @classmethod
    def parse(cls, text: str) -> Fallback:
        """`hangup`, `hangup:<reason>`, `continue` or `continue:<context>,<exten>,<priority>`.

        Raises:
            ValueError: none of these.
        """
        action, _, rest = text.strip().partition(":")
        if action == "hangup":
            return cls("hangup", reason=rest or "normal")
        if action == "continue":
            parts = [p.strip() for p in rest.split(",")] if rest else []
            if len(parts) > 3:
                raise ValueError(f"listen fallback {text!r}: continue takes at most 3 values")
            context, extension, priority = [*parts, "", "", ""][:3]
            if priority and not priority.isdigit():
                raise ValueError(f"listen fallback {text!r}: the priority must be a number")
            return cls(
                "continue", context=context, extension=extension, priority=int(priority or 0)
            )
        raise ValueError(
            f"listen fallback {text!r}: use hangup[:<reason>] or "
            "continue[:<context>,<exten>,<priority>]"
        )

    def __str__(self) -> str:
        if self.action == "hangup":
            return f"hangup:{self.reason}"
        return f"continue:{self.context},{self.extension},{self.priority or ''}".rstrip(",")


class Listeners:
    """The instances in `listen()` of each application, from their presence messages.

    Attributes:
        evicted: listeners forgotten because their application had `MAX_LISTENERS_PER_APP`
            (the stalest first).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, collections.OrderedDict[str, tuple[float, float]]] = {}
        self._last: dict[str, float] = {}
        self.evicted = 0
        self._limiter = RateLimiter(30.0)

    def seen(self, presence: Presence) -> None:
        """Record a listener's presence message (or its leaving)."""
        app, instance = presence.application, presence.instance
        if not app or not instance:
            return
        members = self._seen.setdefault(app, collections.OrderedDict())
        if presence.leaving:
            members.pop(instance, None)
            return
        now = self._clock()
        members[instance] = (now, max(presence.interval, 0.1))
        members.move_to_end(instance)
        while len(members) > MAX_LISTENERS_PER_APP:
            members.popitem(last=False)
            self.evicted += 1
            held = self._limiter.allow("listeners")
            if held is not None:
                logger.warning(
                    "listeners at their bound: forgot the stalest",
                    extra={"app": app, "limit": MAX_LISTENERS_PER_APP, "suppressed": held},
                )
        self._last[app] = now

    def total(self) -> int:
        """Listeners remembered, of every application (live or not yet expired)."""
        return sum(len(members) for members in self._seen.values())

    def live(self, app: str) -> int:
        """Listeners of `app` heard from within three of their intervals."""
        now = self._clock()
        members = self._seen.get(app)
        if not members:
            return 0
        for instance in [i for i, (t, every) in members.items() if now - t > 3 * every]:
            del members[instance]
        return len(members)

    def recent(self, app: str, within: float) -> bool:
        """Whether `app` has listeners, or had some within the last `within` seconds (they may
        be reconnecting)."""
        return self.live(app) > 0 or self._clock() - self._last.get(app, -1e18) <= within


@dataclass(slots=True)
class _Offer:
    app: str
    channel: str
    data: bytes
    created: float
    attempts: int = 1
    due: float = 0.0
    previous_owner: str = ""
    """For a handover: the instance it was taken from (which cannot take it back)."""
    previous_dialog: str = ""
    """For a handover: the old owner's dialog, whose bindings move to the new owner's."""
    state: bytes = b""
    """For a handover: the state saved beside the call, kept for its next owner."""


@dataclass(slots=True)
class _Owner:
    app: str
    instance: str
    dialog: str
    since: float = field(default_factory=time.monotonic)
    state: bytes = b""


Publish = Callable[[str, bytes], Awaitable[bool]]
"""Publish on a subject; False when it failed (counted by the caller)."""
Settle = Callable[[str, str, Fallback], Awaitable[None]]
"""Run the fallback on (app, channel)."""
SnapshotFn = Callable[[str, Sequence[str]], Awaitable[dict[str, Snapshot]]]
"""Read (app, channels) from Asterisk: those that still exist, with their bridges."""
Move = Callable[[str, str], None]
"""Move every binding of dialog `old` to dialog `new` (the call's new owner)."""

MAX_STATE_TOTAL = 64 * 1024 * 1024
"""Bytes of saved call state a server holds in all, by default."""


class CallOffers:
    """Offers, owners and the re-offer loop of one server.

    Args:
        publish: sends an offer on a subject.
        settle: runs the fallback on a call nobody took.
        subjects: the subject builder.
        node: the current Asterisk entity ID.
        deadline: seconds an offer is repeated before the fallback runs.
        retry: first and longest wait between offers.
        fallback: what happens to a call nobody took.
        resume_grace: seconds a restarted server waits for owners before offering the calls
            it found in Stasis.
        max_calls: most calls tracked (offered plus owned); beyond, the oldest owner is
            forgotten (its call then looks unowned to a later take), or, with no owner left,
            the oldest offer (published, no longer repeated). Either is logged at WARNING.
        snapshot: reads the channels (and their bridges) of a handover; without it, calls are
            never handed over.
        move: moves the bindings of a handed-over call's old dialog to its new owner's.
        liveness_timeout: seconds of silence after which an owner is gone (at least twice the
            interval its presence messages announce).
        bus_up: whether this server's own bus link is up: while it is not, silence proves
            nothing, and owners get `recovery_grace` more seconds once it is back.
        recovery_grace: seconds beyond the liveness timeout an owner has to be heard again
            after this server's bus link returns (the instances reconnect too).
        max_state: most bytes of state saved beside one call.
        max_state_total: most bytes of state saved beside all calls.
    """

    def __init__(
        self,
        publish: Publish,
        settle: Settle,
        subjects: Subjects,
        *,
        node: Callable[[], str],
        deadline: float = 10.0,
        retry: tuple[float, float] = (0.5, 2.0),
        fallback: Fallback | None = None,
        resume_grace: float = 3.0,
        max_calls: int = 100_000,
        snapshot: SnapshotFn | None = None,
        move: Move | None = None,
        liveness_timeout: float = 2.0,
        bus_up: Callable[[], bool] = lambda: True,
        recovery_grace: float = 5.0,
        max_state: int = MAX_CALL_STATE,
        max_state_total: int = MAX_STATE_TOTAL,
    ) -> None:
        self._publish = publish
        self._settle = settle
        self.subjects = subjects
        self._node = node
        self.counters: collections.Counter[str] = collections.Counter()
        """`offers`, `offers_repeated`, `takes`, `takes_refused`, `fallbacks`,
        `owners_evicted`, `offers_evicted`, `handovers` (calls offered again), `owners_lost`
        (instances found gone), `states_saved`, `states_refused`."""
        self.deadline = deadline
        self.retry = retry
        self.fallback = fallback or Fallback()
        self.resume_grace = resume_grace
        self.max_calls = max_calls
        self.listeners = Listeners()
        self._pending: dict[str, _Offer] = {}
        self._owners: collections.OrderedDict[str, _Owner] = collections.OrderedDict()
        # Calls that ended lately: a listing of the calls in Stasis taken before the grace of
        # `resume` may name them, and they must not be offered again.
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._snapshot = snapshot
        self._move = move
        self.liveness_timeout = liveness_timeout
        self._bus_up = bus_up
        self.recovery_grace = recovery_grace
        self.max_state = max_state
        self.max_state_total = max_state_total
        self._state_bytes = 0
        # Owners by instance, and when each instance owning calls was last heard (and the
        # interval it announced): only instances that own calls are watched.
        self._by_instance: dict[str, set[str]] = {}
        self._heard: dict[str, tuple[float, float]] = {}
        # Calls taken from a gone owner, while their snapshot is read: channel -> old owner.
        self._preparing: dict[str, _Owner] = {}
        # The dialogs of calls handed over (at most `max_calls`): a request the old owner sent
        # before it heard of the handover (its event loop stalled) must not control the call.
        self._handed_away: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        self._handing: set[asyncio.Task[None]] = set()
        self._limiter = RateLimiter(10.0)

    # --- state ---------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Calls offered and not taken yet."""
        return len(self._pending)

    @property
    def owned(self) -> int:
        """Calls an instance owns."""
        return len(self._owners)

    def owner(self, channel: str) -> tuple[str, str] | None:
        """(instance, dialog) of the call's owner, if any."""
        owner = self._owners.get(channel)
        return (owner.instance, owner.dialog) if owner is not None else None

    @property
    def state_bytes(self) -> int:
        """Bytes of state saved beside the calls."""
        return self._state_bytes

    @property
    def handing_over(self) -> int:
        """Calls taken from a gone owner whose snapshot is being read."""
        return len(self._preparing)

    def on_presence(self, presence: Presence) -> None:
        """A listener's presence message: it is alive, or it is leaving (its calls are handed
        over at once)."""
        if presence.role != PresenceRole.LISTENER:
            return
        self.listeners.seen(presence)
        instance = presence.instance
        if instance not in self._by_instance:
            return
        if presence.leaving:
            self._hand_over_instance(instance, HandoverReason.LEFT)
        else:
            self._heard[instance] = (time.monotonic(), max(presence.interval, 0.0))

    # --- offers --------------------------------------------------------------------------------

    async def offer(self, app: str, channel: str, data: bytes) -> None:
        """Offer a call that entered Stasis; repeated until taken when `app` has listeners.

        A call owned, or offered, in another application has moved here (`ChannelMove`; the new
        application's StasisStart may come before the old one's StasisEnd): it is another
        application's call now."""
        if not channel:
            return
        owner = self._owners.get(channel)
        if owner is not None:
            if owner.app == app:
                return
            self._disown(channel)
        moved = self._pending.get(channel)
        if moved is not None and moved.app != app:
            del self._pending[channel]
        subject = self.subjects.listen(app, self._node())
        sent = await self._publish(subject, data)
        self.counters["offers"] += 1
        if not self.listeners.recent(app, self.deadline):
            return  # nobody listens: published once, as Go's servers publish StasisStart
        now = time.monotonic()
        if channel not in self._pending:
            if len(self._pending) + len(self._owners) >= self.max_calls:
                self._make_room()
            self._pending[channel] = _Offer(app, channel, data, now)
        offer = self._pending[channel]
        offer.due = now + (self.retry[0] if sent else 0.1)
        self._wakeup.set()

    def ended(self, channel: str, app: str = "") -> None:
        """The channel left `app`'s Stasis, or (no `app`) was destroyed: no offer, no owner, no
        state any more. Leaving an application it has already moved on from changes nothing."""
        held: _Owner | _Offer | None = self._owners.get(channel) or self._pending.get(channel)
        if app and held is not None and held.app != app:
            return
        self._pending.pop(channel, None)
        self._preparing.pop(channel, None)
        self._disown(channel)
        self._ended[channel] = None
        if len(self._ended) > _RECENTLY_ENDED:
            self._ended.popitem(last=False)

    def _own(self, channel: str, owner: _Owner) -> None:
        self._owners[channel] = owner
        self._state_bytes += len(owner.state)
        self._by_instance.setdefault(owner.instance, set()).add(channel)
        if owner.instance not in self._heard:
            self._heard[owner.instance] = (time.monotonic(), 0.0)  # a take is a sign of life

    def _disown(self, channel: str) -> _Owner | None:
        owner = self._owners.pop(channel, None)
        if owner is None:
            return None
        self._state_bytes -= len(owner.state)
        channels = self._by_instance.get(owner.instance)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._by_instance[owner.instance]
                self._heard.pop(owner.instance, None)
        return owner

    def take(self, app: str, channel: str, instance: str, dialog: str) -> TakeVerdict:
        """Decide a take: the first instance wins; its repeats are granted again.

        A call this server never offered (it restarted, or the take is late) is granted to the
        first taker too (`GRANTED`); the caller then checks with Asterisk that the channel exists
        and calls `release` when it does not.
        """
        owner = self._owners.get(channel)
        if owner is not None:
            if owner.instance == instance:
                owner.dialog = dialog
                return TakeVerdict.OFFERED
            self.counters["takes_refused"] += 1
            return TakeVerdict.TAKEN
        offer = self._pending.get(channel)
        if channel in self._preparing or (offer is not None and offer.previous_owner == instance):
            # Being handed over: not before its offer is out, and never back to the owner it
            # was taken from (a partitioned instance that came back, or one draining).
            self.counters["takes_refused"] += 1
            return TakeVerdict.TAKEN
        self._pending.pop(channel, None)
        if len(self._pending) + len(self._owners) >= self.max_calls:
            self._make_room()
        self._own(channel, _Owner(app, instance, dialog, state=offer.state if offer else b""))
        if offer is not None and offer.previous_dialog and self._move is not None:
            self._move(offer.previous_dialog, dialog)  # the call's events follow its new owner
        self.counters["takes"] += 1
        return TakeVerdict.OFFERED if offer is not None else TakeVerdict.GRANTED

    def release(self, channel: str, instance: str) -> None:
        """Undo a granted take whose channel turned out gone."""
        owner = self._owners.get(channel)
        if owner is not None and owner.instance == instance:
            self._disown(channel)

    # --- state saved beside a call, and handovers ----------------------------------------------

    def save_state(self, channel: str, instance: str, state: bytes) -> bool:
        """Keep `state` beside the call for its next owner: False when `instance` does not own
        it.

        Raises:
            TooLargeError: `state` is over `max_state` bytes, or the server holds
                `max_state_total` bytes of state already (the previous state is kept).
        """
        owner = self._owners.get(channel)
        if owner is None or owner.instance != instance:
            self.counters["states_refused"] += 1
            return False
        if len(state) > self.max_state:
            self.counters["states_refused"] += 1
            raise TooLargeError(
                f"call state of {len(state)} bytes exceeds the {self.max_state} bytes this "
                "server keeps beside a call (proxy.max_call_state)"
            )
        if self._state_bytes - len(owner.state) + len(state) > self.max_state_total:
            self.counters["states_refused"] += 1
            raise TooLargeError(
                f"this server already keeps {self._state_bytes} bytes of call state, its "
                "bound: the state was not saved"
            )
        self._state_bytes += len(state) - len(owner.state)
        owner.state = state
        self.counters["states_saved"] += 1
        return True

    def handed_away(self, dialog: str) -> bool:
        """Whether `dialog` was a call's dialog until the call was handed over."""
        return dialog in self._handed_away

    def hand_over(self, channel: str, instance: str) -> bool:
        """The owner releases its call (draining): offer it to the group now. False when
        `instance` does not own it."""
        owner = self._owners.get(channel)
        if owner is None or owner.instance != instance:
            return False
        self._start_handover(owner.app, instance, [channel], HandoverReason.DRAIN)
        return True

    def _hand_over_instance(self, instance: str, reason: HandoverReason) -> None:
        """Every call of a gone instance, offered again."""
        if self._snapshot is None:
            return  # no handover configured: the calls stay owned, as before
        channels = self._by_instance.get(instance, set())
        by_app: dict[str, list[str]] = {}
        for channel in channels:
            by_app.setdefault(self._owners[channel].app, []).append(channel)
        self.counters["owners_lost"] += 1
        logger.warning(
            "an instance that owns calls is gone: handing its calls over",
            extra={"instance": instance, "reason": str(reason), "calls": len(channels)},
        )
        for app, calls in by_app.items():
            self._start_handover(app, instance, calls, reason)

    def _start_handover(
        self, app: str, instance: str, channels: list[str], reason: HandoverReason
    ) -> None:
        if self._snapshot is None:
            return  # no handover configured: the calls stay owned, as before
        for channel in channels:
            owner = self._disown(channel)
            if owner is None:
                continue
            self._preparing[channel] = owner
            if owner.dialog:
                self._handed_away[owner.dialog] = None
                if len(self._handed_away) > self.max_calls:
                    self._handed_away.popitem(last=False)
        task = asyncio.get_running_loop().create_task(
            self._prepare(app, instance, channels, reason), name="handover"
        )
        self._handing.add(task)
        task.add_done_callback(self._handing.discard)

    async def _prepare(
        self, app: str, instance: str, channels: list[str], reason: HandoverReason
    ) -> None:
        """Read the calls' snapshots (again until `deadline` while Asterisk does not answer),
        then offer each as a `CallHandover`."""
        assert self._snapshot is not None
        started = time.monotonic()
        wait = self.retry[0]
        while True:
            try:
                snapshots = await self._snapshot(app, channels)
                break
            except Exception as exc:  # Asterisk did not answer, or answered nonsense
                if time.monotonic() - started + wait >= self.deadline:
                    logger.warning("handover: could not read the calls: %s", exc)
                    for channel in channels:
                        if self._preparing.pop(channel, None) is not None:
                            self._fall_back(_Offer(app, channel, b"", started))
                    return
                await asyncio.sleep(wait)  # backoff: Asterisk did not answer
                wait = min(self.retry[1], wait * 2)
        node = self._node()
        subject = self.subjects.listen(app, node)
        for channel in channels:
            owner = self._preparing.pop(channel, None)
            snapshot = snapshots.get(channel)
            if owner is None or snapshot is None:
                continue  # ended meanwhile
            data = handover_event(
                app,
                node,
                snapshot,
                previous_owner=instance,
                reason=str(reason),
                state=owner.state,
                handover_id=new_id("ho"),
            )
            now = time.monotonic()
            self._pending[channel] = _Offer(
                app,
                channel,
                data,
                started,
                previous_owner=instance,
                previous_dialog=owner.dialog,
                state=owner.state,
            )
            self.counters["handovers"] += 1
            sent = await self._publish(subject, data)
            if channel in self._pending:
                self._pending[channel].due = now + (self.retry[0] if sent else 0.1)
            # The old owner, if it still hears (it was cut off, or is draining), learns that
            # the call is no longer its own on the call's events.
            dialog = self.subjects.dialog_event(owner.dialog)
            await self._publish(dialog, with_dialog(data, owner.dialog))
        self._wakeup.set()

    async def _watch_owners(self) -> None:
        """Hand over the calls of owners silent past the liveness timeout."""
        every = max(0.05, self.liveness_timeout / 4)
        while True:
            await asyncio.sleep(every)  # a periodic check: silence has no event
            self.judge_owners()

    def judge_owners(self) -> None:
        """One check: the calls of owners silent past the liveness timeout are handed over
        (none while this server's own bus link is down)."""
        now = time.monotonic()
        if not self._bus_up():
            # Cut off ourselves: nobody is heard, and that says nothing about them.
            later = now + self.recovery_grace
            for instance, (_, interval) in self._heard.items():
                self._heard[instance] = (later, interval)
            return
        gone = [
            instance
            for instance, (heard, interval) in self._heard.items()
            if now - heard > max(self.liveness_timeout, 2 * interval)
        ]
        for instance in gone:
            self._heard.pop(instance, None)
            self._hand_over_instance(instance, HandoverReason.LOST)

    def _make_room(self) -> None:
        """Forget the oldest owner, else the oldest offer, for a new call; WARNING (at most one
        per 10 s)."""
        if self._owners:
            self._disown(next(iter(self._owners)))
            self.counters["owners_evicted"] += 1
            what = "forgot the oldest owner"
        elif self._pending:
            del self._pending[next(iter(self._pending))]
            self.counters["offers_evicted"] += 1
            what = "stopped repeating the oldest offer"
        else:
            return
        held = self._limiter.allow("calls-full")
        if held is not None:
            logger.warning(
                "calls offered and owned at their bound: %s",
                what,
                extra={
                    "limit": self.max_calls,
                    "owned": len(self._owners),
                    "pending": len(self._pending),
                    "suppressed": held,
                },
            )

    async def resume(self, app: str, events: Sequence[bytes]) -> None:
        """Offer the calls found in Stasis (at startup, or after an ARI gap) that, after the
        grace, nobody owns, nobody has been offered and have not ended meanwhile."""
        await asyncio.sleep(self.resume_grace)
        offered = 0
        for data in events:
            channel = _channel_of(data)
            known = channel in self._owners or channel in self._pending or channel in self._ended
            if channel and not known:
                await self.offer(app, channel, data)
                offered += 1
        if offered:
            logger.warning(
                "offering calls found in Stasis that no instance took again",
                extra={"app": app, "calls": offered},
            )

    # --- the re-offer loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Start repeating offers."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="call offers")
            if self._snapshot is not None:
                self._watch = loop.create_task(self._watch_owners(), name="call owners")

    async def stop(self) -> None:
        """Stop repeating offers and watching owners (and let fallbacks in progress end)."""
        tasks = [t for t in (self._task, self._watch, *self._handing) if t is not None]
        self._task = self._watch = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._settling:
            await asyncio.wait(self._settling, timeout=2.0)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = time.monotonic()
            due = min(offer.due for offer in self._pending.values())
            if due > now:
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(due - now):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue
            for offer in [o for o in self._pending.values() if o.due <= now]:
                await self._again(offer, now)

    async def _again(self, offer: _Offer, now: float) -> None:
        if now - offer.created >= self.deadline:
            del self._pending[offer.channel]
            self._fall_back(offer)
            return
        offer.attempts += 1
        wait = min(self.retry[1], self.retry[0] * 2 ** (offer.attempts - 1))
        offer.due = now + min(wait, max(0.05, offer.created + self.deadline - now))
        self.counters["offers_repeated"] += 1
        await self._publish(self.subjects.listen(offer.app, self._node()), offer.data)

    def _fall_back(self, offer: _Offer) -> None:
        self.counters["fallbacks"] += 1
        logger.warning(
            "no instance took the call within the deadline: %s",
            self.fallback.action,
            extra={
                "app": offer.app,
                "channel": offer.channel,
                "offers": offer.attempts,
                "deadline": self.deadline,
                "fallback": str(self.fallback),
            },
        )
        task = asyncio.get_running_loop().create_task(self._settle_safely(offer))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_safely(self, offer: _Offer) -> None:
        try:
            await self._settle(offer.app, offer.channel, self.fallback)
        except AriProxyError as exc:
            held = self._limiter.allow("fallback")
            if held is not None:
                logger.warning(
                    "the fallback failed: %s",
                    exc,
                    extra={"app": offer.app, "channel": offer.channel, "suppressed": held},
                )


def _channel_of(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return ""
    channel = body.get("channel") if isinstance(body, dict) else None
    ident = channel.get("id") if isinstance(channel, dict) else None
    return ident if isinstance(ident, str) else ""


def stasis_start(app: str, node: str, channel: bytes) -> bytes:
    """A StasisStart for a channel already in Stasis, which a restarted server offers again
    (marked `"resumed":true`, an extension)."""
    event = {
        "type": "StasisStart",
        "application": app,
        "asterisk_id": node,
        "timestamp": format_go_datetime(datetime.now(UTC)),
        "args": [],
        "channel": json.loads(channel),
        "resumed": True,
    }
    return json.dumps(event, separators=(",", ":")).encode()
