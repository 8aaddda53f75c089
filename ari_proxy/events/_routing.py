"""Dialog routing of events: which dialogs an event goes to, for the server and the native
client alike."""

from __future__ import annotations

from ..protocol import DialogRouter
from ..spec import Message
from ._decode import event_keys, event_type

__all__ = ["route_event"]


def route_event(router: DialogRouter, event: Message) -> list[str]:
    """The dialogs bound to any entity `event` concerns, each once; the bindings of the
    entities the event ends (a ChannelDestroyed, ...) end with it."""
    if not len(router):
        return []
    entities = [(key.kind, key.id) for key in event_keys(event)]
    return router.route(event_type(event), entities)
