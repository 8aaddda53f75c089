"""Events as they arrive: decoding that never loses one, and the entities each concerns.

Whatever reads events (the ARI WebSocket in the native client and the server, bus subscriptions
in the proxy client) decodes them here. Unknown types and unexpected shapes become
`UnknownEvent`, never an exception or a loss; events re-encoded by a Go server decode like
Asterisk's own. `event_keys` names the entities an event concerns, for subscriptions and for
dialog routing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._exceptions import ProtocolError
from ..protocol import Key, format_go_datetime
from ..spec import (
    EVENT_ENTITIES,
    EVENT_TYPES,
    AnyMessage,
    Event,
    Message,
    clear_zero_models,
    convert_lenient,
)
from ..spec.models import Bridge, Channel

__all__ = [
    "CallHandover",
    "ConnectionGap",
    "UnknownEvent",
    "decode_event",
    "event_keys",
    "event_type",
    "gap_since",
    "raw_event",
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


class CallHandover(Event, tag="CallHandover"):
    """Ours: a live call whose owner is gone (or draining), offered to the application's
    listen group again (docs/handover.md). The instance that takes it becomes the call's
    owner; Go peers never see it (it travels on our listen subjects only).
    """

    channel: Channel = msgspec.field(default_factory=lambda: Channel())
    """The channel as Asterisk reported it when the handover began."""
    bridges: list[Bridge] = msgspec.field(default_factory=list)
    """The bridges the channel is in."""
    previous_owner: str = ""
    """The instance that owned the call."""
    reason: str = ""
    """`lost` (its presence fell silent), `left` (it stopped listening) or `drain` (it
    released the call)."""
    state: bytes = b""
    """The last state the owners saved (`Call.save_state`), base64 on the wire."""
    handover_id: str = ""
    """This handover's ID: an instance that saw the call's first offer still takes this one."""


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
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(
    AnyMessage | ConnectionGap | CallHandover
)
_MESSAGE_TYPES: dict[str, type[Message]] = {
    **EVENT_TYPES,
    "ConnectionGap": ConnectionGap,
    "CallHandover": CallHandover,
}


def event_type(event: Message) -> str:
    """The ARI `type` of a decoded message (for `UnknownEvent`, the type Asterisk sent)."""
    explicit = event.__dict__.get("_type")
    if explicit is not None:
        return str(explicit)
    return str(event.__struct_config__.tag)


def decode_event(data: bytes | str) -> Message:
    """Decode one ARI message; unknown types and unexpected shapes become `UnknownEvent`.

    Events re-encoded by a Go server (zero values for absent objects) decode like Asterisk's own
    (see `ari_proxy.spec._decoding`). The original JSON is kept as `_raw` on the returned object
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
