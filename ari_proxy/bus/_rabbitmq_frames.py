"""The AMQP 0-9-1 frames of a `basic.publish`, marshalled by hand, sans I/O.

pamqp marshals every frame generically, field by field through its type tables, and that was
most of the CPU time of publishing an event. The frames of a publish are simple and fixed by
the AMQP 0-9-1 specification (section 4.2.3: type, channel, size, payload, frame-end):

- a method frame `basic.publish`: class 60, method 40, reserved short, exchange and routing key
  as short strings, the mandatory and immediate bits;
- a content header: class 60, weight 0, body size, then the property flags and list;
- body frames of at most `frame_max - 8` bytes each.

The properties are the same for every event, so pamqp marshals them once (`encode_properties`);
a reply's differ only in its correlation id, so `reply_properties` writes them directly. Tests
check these bytes against pamqp's for every shape of publish and of reply.
"""

from __future__ import annotations

import struct

from pamqp.commands import Basic
from pamqp.header import ContentHeader

__all__ = ["encode_properties", "publish_frames", "reply_properties", "request_properties"]

_METHOD_FRAME, _HEADER_FRAME, _BODY_FRAME = 1, 2, 3
_FRAME_END = b"\xce"
_FRAME_HEAD = struct.Struct(">BHI")
_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # basic.publish, reserved-1
_HEADER = struct.Struct(">HHQ")  # class basic, weight, body size
_CONTENT_HEADER_FIXED = _HEADER.size

# Property flags (AMQP 0-9-1 section 4.2.6.1, basic class): content-type, delivery-mode,
# correlation-id, reply-to, expiration; the list holds the set properties in that order.
_CONTENT_TYPE, _DELIVERY_MODE, _CORRELATION_ID = 0x8000, 0x1000, 0x0400
_REPLY_TO, _EXPIRATION = 0x0200, 0x0100
_JSON = b"\x10application/json"  # short string: length, then the bytes
_TRANSIENT = b"\x01"
_REPLY_PLAIN = struct.pack(">H", _CONTENT_TYPE | _DELIVERY_MODE) + _JSON + _TRANSIENT
_REPLY_FLAGS = struct.pack(">H", _CONTENT_TYPE | _DELIVERY_MODE | _CORRELATION_ID) + _JSON
_REQUEST_FLAGS = (
    struct.pack(">H", _CONTENT_TYPE | _CORRELATION_ID | _REPLY_TO | _EXPIRATION) + _JSON
)


def encode_properties(properties: Basic.Properties) -> bytes:
    """The property flags and property list of `properties`, as in a content header."""
    return ContentHeader(0, 0, properties).marshal()[_CONTENT_HEADER_FIXED:]


def reply_properties(correlation_id: str) -> bytes:
    """The properties of a reply, as `encode_properties` would write them: content type JSON,
    transient, and `correlation_id` when there is one (what Go writes, plus the echoed id).

    Raises:
        ValueError: `correlation_id` is longer than a short string (255 bytes).
    """
    if not correlation_id:
        return _REPLY_PLAIN
    return _REPLY_FLAGS + _TRANSIENT + _short_string(correlation_id, "correlation id")


def request_properties(correlation_id: str, reply_to: str, expiration: str) -> bytes:
    """The properties of a client request, as `encode_properties` would write them: content
    type JSON, `correlation_id`, `reply_to` and the per-message `expiration` (all non-empty).

    Raises:
        ValueError: a value is longer than a short string (255 bytes).
    """
    return (
        _REQUEST_FLAGS
        + _short_string(correlation_id, "correlation id")
        + _short_string(reply_to, "reply-to")
        + _short_string(expiration, "expiration")
    )


def _short_string(value: str, what: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"{what} longer than 255 bytes: {value[:40]!r}...")
    return bytes((len(data),)) + data


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEAD.pack(kind, channel, len(payload)) + payload + _FRAME_END


def publish_frames(
    channel: int,
    *,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: bytes,
    frame_max: int,
    mandatory: bool = False,
) -> bytes:
    """The frames of one `basic.publish` of `body` on `channel`, ready for the socket.

    Args:
        properties: from `encode_properties`.
        frame_max: the connection's negotiated largest frame (0: no limit).

    Raises:
        ValueError: `exchange` or `routing_key` is longer than AMQP allows (255 bytes).
    """
    method = (
        _PUBLISH
        + _short_string(exchange, "exchange")
        + _short_string(routing_key, "routing key")
        + (b"\x01" if mandatory else b"\x00")
    )
    parts = [
        _frame(_METHOD_FRAME, channel, method),
        _frame(_HEADER_FRAME, channel, _HEADER.pack(60, 0, len(body)) + properties),
    ]
    chunk = frame_max - 8 if frame_max > 8 else len(body) or 1
    for start in range(0, len(body), chunk):
        parts.append(_frame(_BODY_FRAME, channel, body[start : start + chunk]))
    return b"".join(parts)
