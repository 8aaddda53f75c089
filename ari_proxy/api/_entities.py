"""`Client.handle_of`: the handle for an entity model an event (or a read) returned.

`event.channel` is a `Channel` model: data, not something to act on. `handle_of` turns it
into a `ChannelHandle` whose key carries the client's application and dialog, and the node the
event came from (its `asterisk_id`), so that through the proxy its requests go to the one
server that has the channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast, overload

from ..protocol import Key
from ..spec.models import (
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    LiveRecording,
    Mailbox,
    Message,
    Playback,
    Sound,
    StoredRecording,
)
from ._bridges import BridgeHandle
from ._channels import ChannelHandle
from ._handles import Handle
from ._media import LiveRecordingHandle, PlaybackHandle, SoundHandle, StoredRecordingHandle
from ._system import DeviceStateHandle, EndpointHandle, MailboxHandle

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Entity", "ModelHandles"]

Entity = (
    Channel
    | Bridge
    | Playback
    | LiveRecording
    | StoredRecording
    | Endpoint
    | DeviceState
    | Mailbox
    | Sound
)
"""The ARI models that have a handle."""


def _endpoint_id(endpoint: Endpoint) -> str:
    return f"{endpoint.technology}/{endpoint.resource}"


# Model -> (its handle, how its ID is read). The key kind is the handle's own.
_HANDLES: dict[type, tuple[type[Handle], Callable[[object], str]]] = {
    Channel: (ChannelHandle, lambda m: m.id),  # type: ignore[attr-defined]
    Bridge: (BridgeHandle, lambda m: m.id),  # type: ignore[attr-defined]
    Playback: (PlaybackHandle, lambda m: m.id),  # type: ignore[attr-defined]
    Sound: (SoundHandle, lambda m: m.id),  # type: ignore[attr-defined]
    LiveRecording: (LiveRecordingHandle, lambda m: m.name),  # type: ignore[attr-defined]
    StoredRecording: (StoredRecordingHandle, lambda m: m.name),  # type: ignore[attr-defined]
    DeviceState: (DeviceStateHandle, lambda m: m.name),  # type: ignore[attr-defined]
    Mailbox: (MailboxHandle, lambda m: m.name),  # type: ignore[attr-defined]
    Endpoint: (EndpointHandle, _endpoint_id),  # type: ignore[dict-item]
}


class ModelHandles:
    """`Client.handle_of` (a base of `Client`, kept beside the table it reads)."""

    __slots__ = ()

    @overload
    def handle_of(self, entity: Channel, event: Message | None = None) -> ChannelHandle: ...
    @overload
    def handle_of(self, entity: Bridge, event: Message | None = None) -> BridgeHandle: ...
    @overload
    def handle_of(self, entity: Playback, event: Message | None = None) -> PlaybackHandle: ...
    @overload
    def handle_of(
        self, entity: LiveRecording, event: Message | None = None
    ) -> LiveRecordingHandle: ...
    @overload
    def handle_of(
        self, entity: StoredRecording, event: Message | None = None
    ) -> StoredRecordingHandle: ...
    @overload
    def handle_of(self, entity: Endpoint, event: Message | None = None) -> EndpointHandle: ...
    @overload
    def handle_of(self, entity: DeviceState, event: Message | None = None) -> DeviceStateHandle: ...
    @overload
    def handle_of(self, entity: Mailbox, event: Message | None = None) -> MailboxHandle: ...
    @overload
    def handle_of(self, entity: Sound, event: Message | None = None) -> SoundHandle: ...

    def handle_of(self, entity: Entity, event: Message | None = None) -> Handle:
        """The handle of an entity model (`event.channel`, a `Bridge`, a `Playback`, ...), to act
        on it directly: `await client.handle_of(event.channel, event).answer()` (no I/O).

        Given the `event` the model came in, the handle carries its node and application, so
        through the proxy its requests go to that node's server alone; without it, the client's
        node (none through the proxy: every server is asked). The key has the client's dialog.

        Raises:
            TypeError: `entity` is not an ARI model with a handle.
            ValueError: the model has no ID.
        """
        client = cast("Client", self)
        found = _HANDLES.get(type(entity))
        if found is None:
            names = ", ".join(sorted(model.__name__ for model in _HANDLES))
            raise TypeError(f"no handle for a {type(entity).__name__}: one of {names} is needed")
        cls, read_id = found
        ident = read_id(entity)
        if not ident or ident == "/":
            raise ValueError(f"this {type(entity).__name__} has no ID to make a handle of")
        node = (event.asterisk_id or "") if event is not None else client.node
        app = (getattr(event, "application", "") if event is not None else "") or client.application
        return cls(client, Key(cls.kind, ident, node, client.dialog, app))
