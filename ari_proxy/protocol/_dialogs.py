"""Dialog routing: which dialogs want the events of which entities (docs/protocol.md, "Events").

A request whose key carries a `dialog` binds that dialog to the entities the request concerns
(the kind table says which). Each event then goes, once per dialog, to every dialog bound to one
of its entities. Unlike the Go reference, bindings end with their entity (ChannelDestroyed,
BridgeDestroyed, PlaybackFinished, RecordingFinished...), soon after the entity leaves the
application (StasisEnd), or when a sweep finds the entity gone; the table is bounded, so memory
stays flat over millions of calls.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Set

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


class DialogRouter:
    """Bindings from `(entity kind, id)` to dialog IDs, bounded in size.

    Attributes:
        evicted: bindings dropped because the table was full (oldest entity first).
    """

    def __init__(
        self, max_entities: int = 1_000_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entities = max_entities
        self.evicted = 0
        self._clock = clock
        self._bound: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._since: dict[tuple[str, str], float] = {}
        self._left: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        return len(self._bound)

    def bind(self, dialog: str, kind: str, ident: str) -> bool:
        """Route the events of entity `(kind, ident)` to `dialog` too; return whether that is
        a new binding."""
        if not (dialog and kind and ident):
            return False
        entity = (kind, ident)
        dialogs = self._bound.get(entity)
        if dialogs is None:
            if len(self._bound) >= self.max_entities:
                self._drop(next(iter(self._bound)))
                self.evicted += 1
            self._bound[entity] = [dialog]
            self._since[entity] = self._clock()
            return True
        if dialog in dialogs:
            return False
        dialogs.append(dialog)
        return True

    def bind_all(self, dialog: str, entities: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        """Bind `dialog` to each of `entities`; return the bindings that are new (for `unbind`)."""
        return [entity for entity in entities if self.bind(dialog, *entity)]

    def unbind(self, dialog: str, kind: str, ident: str) -> None:
        """Stop routing entity `(kind, ident)`'s events to `dialog`."""
        dialogs = self._bound.get((kind, ident))
        if dialogs is not None and dialog in dialogs:
            dialogs.remove(dialog)
            if not dialogs:
                self._drop((kind, ident))

    def _drop(self, entity: tuple[str, str]) -> None:
        self._bound.pop(entity, None)
        self._since.pop(entity, None)
        self._left.pop(entity, None)

    def dialog_ids(self) -> set[str]:
        """Every dialog with at least one binding."""
        return {dialog for dialogs in self._bound.values() for dialog in dialogs}

    def clear(self) -> None:
        """Forget every binding (the entities' Asterisk restarted or was replaced)."""
        self._bound.clear()
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

    def unbind_dialog(self, dialog: str) -> None:
        """Remove `dialog` from every entity (the dialog's owner went away)."""
        for entity in [e for e, ds in self._bound.items() if dialog in ds]:
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
