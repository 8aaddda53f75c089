"""Dialog routing: which dialogs want the events of which entities (docs/protocol.md, "Events").

A request whose key carries a `dialog` binds that dialog to the entities the request concerns
(the kind table says which). Each event then goes, once per dialog, to every dialog bound to one
of its entities. Unlike the Go reference, bindings end with their entity (ChannelDestroyed,
BridgeDestroyed, PlaybackFinished, RecordingFinished...), soon after the entity leaves the
application (StasisEnd), or when a sweep finds the entity gone; the table is bounded, so memory
stays flat over millions of calls.

The bus may carry forged requests, and a binding costs a caller nothing (`ChannelSubscribe` of
a channel that does not exist is answered "ok"), so the bounds are such that junk cannot push
a live call out: a call taken with `ListenTake` is *pinned* to its owner's dialog and never
evicted to make room; other bindings make room for each other, oldest first; one dialog holds
at most `max_per_dialog` entities and one entity at most `max_dialogs_per_entity` dialogs (an
event is copied once per dialog), each evicting its own oldest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Final

__all__ = ["ENDING_EVENTS", "LEAVING_EVENTS", "DialogRouter"]

#: Event type -> the entity kind whose bindings end with it (after the event is routed).
ENDING_EVENTS: dict[str, str] = {
    "ChannelDestroyed": "channel",
    "BridgeDestroyed": "bridge",
    "PlaybackFinished": "playback",
    "RecordingFinished": "liverecording",
    "RecordingFailed": "liverecording",
}

#: Event type -> the entity kind that leaves the application with it. Its bindings end a little
#: later (`DialogRouter.sweep`): a hung-up channel's ChannelDestroyed follows its StasisEnd and
#: still reaches the dialog, while a channel sent on in the dialplan sends the application
#: nothing more.
LEAVING_EVENTS: dict[str, str] = {"StasisEnd": "channel"}


Entity = tuple[str, str]
"""`(entity kind, id)`."""

Overflow = Callable[[str], None]
"""Told which bound was reached: `table`, `pinned`, `dialog` or `entity` (see `DialogRouter`)."""

MAX_DIALOGS_PER_ENTITY: Final = 256
"""Dialogs one entity's events are copied to at most (each event is published once per
dialog); beyond, the entity's oldest dialog other than its owner's is dropped."""


class DialogRouter:
    """Bindings from `(entity kind, id)` to dialog IDs, bounded in size.

    Args:
        max_entities: entities bound at most. A new entity beyond it evicts the oldest entity
            that is not pinned; when every one is pinned, a new pinned entity evicts the oldest
            pinned one and a new unpinned binding is refused (not made).
        max_per_dialog: entities one dialog is bound to at most (0: no bound); beyond, the
            dialog's oldest unpinned binding is dropped.
        max_dialogs_per_entity: dialogs bound to one entity at most; beyond, the entity's
            oldest dialog other than its pinned owner is dropped.
        clock: monotonic seconds (tests pass their own).
        on_overflow: called whenever a bound drops or refuses a binding, with which one.

    Attributes:
        evicted: unpinned entities dropped to make room in the table (oldest first).
        pinned_evicted: pinned entities dropped because the table was full of pinned ones.
        refused: unpinned bindings not made because the table was full of pinned ones.
        dialog_evicted: bindings dropped by the per-dialog or per-entity bound.
    """

    def __init__(
        self,
        max_entities: int = 1_000_000,
        *,
        max_per_dialog: int = 0,
        max_dialogs_per_entity: int = MAX_DIALOGS_PER_ENTITY,
        clock: Callable[[], float] = time.monotonic,
        on_overflow: Overflow | None = None,
    ) -> None:
        self.max_entities = max_entities
        self.max_per_dialog = max_per_dialog
        self.max_dialogs_per_entity = max(1, max_dialogs_per_entity)
        self.on_overflow = on_overflow
        self.evicted = 0
        self.pinned_evicted = 0
        self.refused = 0
        self.dialog_evicted = 0
        self._clock = clock
        self._bound: dict[Entity, list[str]] = {}
        # Eviction order: unpinned entities, then pinned ones (entity -> its owner dialog),
        # each oldest first.
        self._free: OrderedDict[Entity, None] = OrderedDict()
        self._pinned: OrderedDict[Entity, str] = OrderedDict()
        # dialog -> its entities, oldest first (for the per-dialog bound and dialog lookups;
        # plain dicts keep insertion order and weigh half an OrderedDict: one per dialog).
        self._dialogs: dict[str, dict[Entity, None]] = {}
        self._since: dict[Entity, float] = {}
        self._left: dict[Entity, float] = {}

    def __len__(self) -> int:
        return len(self._bound)

    @property
    def pinned(self) -> int:
        """Entities pinned to their owner's dialog (calls taken with `ListenTake`)."""
        return len(self._pinned)

    def is_pinned(self, kind: str, ident: str) -> bool:
        """Whether the entity is pinned."""
        return (kind, ident) in self._pinned

    def bind(self, dialog: str, kind: str, ident: str, *, pin: bool = False) -> bool:
        """Route the events of entity `(kind, ident)` to `dialog` too; return whether that is
        a new binding. With `pin`, the entity is pinned to `dialog`, its owner (a call taken
        with `ListenTake`): never evicted to make room, until its binding ends.

        An unpinned binding is not made (False) when the table is full of pinned entities."""
        if not (dialog and kind and ident):
            return False
        entity = (kind, ident)
        dialogs = self._bound.get(entity)
        if dialogs is None:
            if len(self._bound) >= self.max_entities and not self._make_room(pin):
                return False
            dialogs = self._bound[entity] = []
            self._since[entity] = self._clock()
            if not pin:
                self._free[entity] = None
        if pin:
            self._free.pop(entity, None)
            self._pinned[entity] = dialog
        if dialog in dialogs:
            return False
        if len(dialogs) >= self.max_dialogs_per_entity:
            owner = self._pinned.get(entity)
            dropped = next((d for d in dialogs if d != owner), None)
            self._overflow("entity")
            if dropped is None:
                return False
            self._unlink(dropped, entity)
            self.dialog_evicted += 1
        dialogs.append(dialog)
        members = self._dialogs.get(dialog)
        if members is None:
            members = self._dialogs[dialog] = {}
        members[entity] = None
        if self.max_per_dialog and len(members) > self.max_per_dialog:
            victim = next(
                (e for e in members if e != entity and self._pinned.get(e) != dialog), None
            )
            if victim is not None:
                self.unbind(dialog, *victim)
                self.dialog_evicted += 1
                self._overflow("dialog")
        return True

    def _make_room(self, pin: bool) -> bool:
        """Evict one entity for a new one; False when a new unpinned one must be refused."""
        if self._free:
            self._drop(next(iter(self._free)))
            self.evicted += 1
            self._overflow("table")
            return True
        if pin and self._pinned:
            self._drop(next(iter(self._pinned)))
            self.pinned_evicted += 1
            self._overflow("pinned")
            return True
        self.refused += 1
        self._overflow("pinned")
        return False

    def _overflow(self, bound: str) -> None:
        if self.on_overflow is not None:
            self.on_overflow(bound)

    def bind_all(self, dialog: str, entities: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        """Bind `dialog` to each of `entities`; return the bindings that are new (for `unbind`)."""
        return [entity for entity in entities if self.bind(dialog, *entity)]

    def unbind(self, dialog: str, kind: str, ident: str) -> None:
        """Stop routing entity `(kind, ident)`'s events to `dialog` (unpinning it, if `dialog`
        is its owner)."""
        entity = (kind, ident)
        dialogs = self._bound.get(entity)
        if dialogs is None or dialog not in dialogs:
            return
        self._unlink(dialog, entity)
        if not dialogs:
            self._drop(entity)
        elif self._pinned.get(entity) == dialog:
            del self._pinned[entity]
            self._free[entity] = None

    def unpin(self, kind: str, ident: str) -> None:
        """Make a pinned entity an ordinary binding again (a take that turned out void)."""
        entity = (kind, ident)
        if self._pinned.pop(entity, None) is not None and entity in self._bound:
            self._free[entity] = None

    def _unlink(self, dialog: str, entity: Entity) -> None:
        """Remove the (entity, dialog) pair from both directions."""
        dialogs = self._bound.get(entity)
        if dialogs is not None and dialog in dialogs:
            dialogs.remove(dialog)
        members = self._dialogs.get(dialog)
        if members is not None:
            members.pop(entity, None)
            if not members:
                del self._dialogs[dialog]

    def _drop(self, entity: Entity) -> None:
        for dialog in self._bound.pop(entity, ()):
            members = self._dialogs.get(dialog)
            if members is not None:
                members.pop(entity, None)
                if not members:
                    del self._dialogs[dialog]
        self._free.pop(entity, None)
        self._pinned.pop(entity, None)
        self._since.pop(entity, None)
        self._left.pop(entity, None)

    def dialog_ids(self) -> set[str]:
        """Every dialog with at least one binding."""
        return set(self._dialogs)

    def clear(self) -> None:
        """Forget every binding (the entities' Asterisk restarted or was replaced)."""
        self._bound.clear()
        self._free.clear()
        self._pinned.clear()
        self._dialogs.clear()
        self._since.clear()
        self._left.clear()

    def dialogs(self, entities: Iterable[tuple[str, str]]) -> list[str]:
        """The dialogs bound to any of `entities`, each once, in binding order."""
        found: list[str] = []
        for entity in entities:
            for dialog in self._bound.get(entity, ()):
                if dialog not in found:
                    found.append(dialog)
        return found

    def forget(self, kind: str, ident: str) -> None:
        """Remove every binding of an entity that no longer exists."""
        self._drop((kind, ident))

    def move(self, old: str, new: str) -> None:
        """Move every binding of dialog `old` to dialog `new`, pins included (a call handed
        over to a new owner: docs/handover.md)."""
        if not new or old == new:
            return
        for entity in list(self._dialogs.get(old, ())):
            pinned = self._pinned.get(entity) == old
            self.unbind(old, *entity)
            self.bind(new, *entity, pin=pinned)

    def unbind_dialog(self, dialog: str) -> None:
        """Remove `dialog` from every entity (the dialog's owner went away)."""
        for entity in list(self._dialogs.get(dialog, ())):
            self.unbind(dialog, *entity)

    def route(self, event_type: str, entities: list[tuple[str, str]]) -> list[str]:
        """The dialogs an event goes to; forgets the entities the event ends, and notes those
        that leave the application (see `sweep`)."""
        if not self._bound:
            return []
        dialogs = self.dialogs(entities)
        ending = ENDING_EVENTS.get(event_type)
        if ending is not None:
            for kind, ident in entities:
                if kind == ending:
                    self.forget(kind, ident)
        leaving = LEAVING_EVENTS.get(event_type)
        if leaving is not None:
            now = self._clock()
            for entity in entities:
                if entity[0] == leaving and entity in self._bound:
                    self._left.setdefault(entity, now)
        return dialogs

    def sweep(
        self,
        live: Mapping[str, Set[str]],
        *,
        older_than: float,
        max_age: float,
        linger: float = 2.0,
    ) -> int:
        """End the bindings whose end went by unseen; return how many entities were dropped.

        `live` lists, by entity kind, the IDs that exist now (Asterisk's channels and bridges):
        an entity of such a kind that is not listed and was bound more than `older_than`
        seconds ago is gone. An entity that left the application more than `linger` seconds
        ago, and any other binding older than `max_age`, ends too.
        """
        now = self._clock()
        gone = []
        for entity, since in self._since.items():
            kind, ident = entity
            left = self._left.get(entity)
            if left is not None and now - left > linger:
                gone.append(entity)
            elif kind in live:
                if ident not in live[kind] and now - since > older_than:
                    gone.append(entity)
            elif now - since > max_age:
                gone.append(entity)
        for entity in gone:
            self._drop(entity)
        return len(gone)
