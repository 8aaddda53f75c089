"""Dialog routing: which dialogs want the events of which entities (docs/protocol.md, "Events").

A request whose key carries a `dialog` binds that dialog to the entities the request concerns
(the kind table says which). Each event then goes, once per dialog, to every dialog bound to one
of its entities. Unlike the Go reference, bindings end with their entity (ChannelDestroyed,
BridgeDestroyed, PlaybackFinished, RecordingFinished...), and the table is bounded, so memory
stays flat over millions of calls.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["ENDING_EVENTS", "DialogRouter"]

#: Event type -> the entity kind whose bindings end with it (after the event is routed).
ENDING_EVENTS: dict[str, str] = {
    "ChannelDestroyed": "channel",
    "BridgeDestroyed": "bridge",
    "PlaybackFinished": "playback",
    "RecordingFinished": "liverecording",
    "RecordingFailed": "liverecording",
}


class DialogRouter:
    """Bindings from `(entity kind, id)` to dialog IDs, bounded in size.

    Attributes:
        evicted: bindings dropped because the table was full (oldest entity first).
    """

    def __init__(self, max_entities: int = 1_000_000) -> None:
        self.max_entities = max_entities
        self.evicted = 0
        self._bound: OrderedDict[tuple[str, str], list[str]] = OrderedDict()

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
                self._bound.popitem(last=False)
                self.evicted += 1
            self._bound[entity] = [dialog]
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
                del self._bound[(kind, ident)]

    def dialog_ids(self) -> set[str]:
        """Every dialog with at least one binding."""
        return {dialog for dialogs in self._bound.values() for dialog in dialogs}

    def clear(self) -> None:
        """Forget every binding (the entities' Asterisk restarted or was replaced)."""
        self._bound.clear()

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
        self._bound.pop((kind, ident), None)

    def unbind_dialog(self, dialog: str) -> None:
        """Remove `dialog` from every entity (the dialog's owner went away)."""
        for entity in [e for e, ds in self._bound.items() if dialog in ds]:
            dialogs = self._bound[entity]
            dialogs.remove(dialog)
            if not dialogs:
                del self._bound[entity]

    def route(self, event_type: str, entities: list[tuple[str, str]]) -> list[str]:
        """The dialogs an event goes to; forgets the entities the event ends."""
        dialogs = self.dialogs(entities) if self._bound else []
        ending = ENDING_EVENTS.get(event_type)
        if ending is not None:
            for kind, ident in entities:
                if kind == ending:
                    self.forget(kind, ident)
        return dialogs
