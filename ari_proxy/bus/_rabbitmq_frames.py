"""The AMQP 0-9-1 frames we write and read most, by hand, sans I/O: those of a `basic.publish`
out, and those of a delivery in.

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

A delivery arrives as the same three kinds of frame: `basic.deliver` (class 60, method 60: the
consumer tag, the delivery tag, the redelivered bit, exchange and routing key), a content header,
and its body. pamqp decodes them field by field through its type tables too, which cost about
as much CPU as the rest of a request on the server; `decode_frame` builds the same pamqp objects
directly, and leaves every other frame (and any header with a headers table or a timestamp) to
pamqp. Tests check its frames against pamqp's.
"""

from __future__ import annotations

import struct

from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.header import ContentHeader

__all__ = [
    "decode_frame",
    "encode_properties",
    "publish_frames",
    "reply_properties",
    "request_properties",
]

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


# --- in: the frames of a delivery ------------------------------------------------------------

_DELIVER = struct.pack(">HH", 60, 60)  # basic.deliver
_DELIVERY_TAG = struct.Struct(">q")  # signed, as pamqp decodes it
_HEADER_FLAGS = struct.Struct(">H")
_PROPERTY_FLAGS_AT = _HEADER.size
_SHORT_STRING, _OCTET = 0, 1
# Basic's properties in flag order (AMQP 0-9-1 section 4.2.6.1), with how each is encoded;
# None: a table or a timestamp, left to pamqp.
_PROPERTIES: tuple[tuple[int, str, int | None], ...] = (
    (0x8000, "content_type", _SHORT_STRING),
    (0x4000, "content_encoding", _SHORT_STRING),
    (0x2000, "headers", None),
    (0x1000, "delivery_mode", _OCTET),
    (0x0800, "priority", _OCTET),
    (0x0400, "correlation_id", _SHORT_STRING),
    (0x0200, "reply_to", _SHORT_STRING),
    (0x0100, "expiration", _SHORT_STRING),
    (0x0080, "message_id", _SHORT_STRING),
    (0x0040, "timestamp", None),
    (0x0020, "message_type", _SHORT_STRING),
    (0x0010, "user_id", _SHORT_STRING),
    (0x0008, "app_id", _SHORT_STRING),
    (0x0004, "cluster_id", _SHORT_STRING),
)
_LEFT_TO_PAMQP = 0x2000 | 0x0040 | 0x0001  # headers, timestamp, a second flags word
_UNSET = {name: None for _, name, _ in _PROPERTIES} | {"cluster_id": ""}
"""What pamqp's `Basic.Properties()` holds: every property None, `cluster_id` empty."""

Frame = Basic.Deliver | ContentHeader | ContentBody


def decode_frame(kind: int, payload: bytes) -> Frame | None:
    """The frame of type `kind` (1 method, 2 content header, 3 body) whose payload, between the
    frame's header and its frame-end, is `payload`, as pamqp would decode it; None when pamqp
    must (any method but `basic.deliver`, a header with a headers table or a timestamp, or
    bytes that do not decode: pamqp then says what is wrong)."""
    try:
        if kind == _BODY_FRAME:
            return ContentBody(payload) if payload else None  # pamqp refuses an empty one
        if kind == _METHOD_FRAME:
            return _deliver(payload) if payload.startswith(_DELIVER) else None
        if kind == _HEADER_FRAME:
            return _content_header(payload)
    except (IndexError, ValueError, struct.error):
        return None
    return None


def _deliver(payload: bytes) -> Basic.Deliver:
    consumer_tag, at = _read_short_string(payload, len(_DELIVER))
    (delivery_tag,) = _DELIVERY_TAG.unpack_from(payload, at)
    redelivered = bool(payload[at + 8] & 1)
    exchange, at = _read_short_string(payload, at + 9)
    routing_key, at = _read_short_string(payload, at)
    if at != len(payload):
        raise ValueError("basic.deliver: trailing bytes")
    # pamqp's constructor checks the exchange name against a pattern; decoding does not.
    frame = Basic.Deliver.__new__(Basic.Deliver)
    frame.consumer_tag = consumer_tag
    frame.delivery_tag = delivery_tag
    frame.redelivered = redelivered
    frame.exchange = exchange
    frame.routing_key = routing_key
    return frame


def _content_header(payload: bytes) -> ContentHeader | None:
    class_id, weight, body_size = _HEADER.unpack_from(payload)
    (flags,) = _HEADER_FLAGS.unpack_from(payload, _PROPERTY_FLAGS_AT)
    if flags & _LEFT_TO_PAMQP:
        return None
    values: dict[str, object] = dict(_UNSET)
    at = _PROPERTY_FLAGS_AT + _HEADER_FLAGS.size
    for flag, name, encoding in _PROPERTIES:
        if flags & flag:
            if encoding == _OCTET:
                values[name] = payload[at]
                at += 1
            else:
                values[name], at = _read_short_string(payload, at)
    if at != len(payload):
        raise ValueError("content header: trailing bytes")
    properties = Basic.Properties.__new__(Basic.Properties)
    for name, value in values.items():
        setattr(properties, name, value)
    header = ContentHeader.__new__(ContentHeader)
    header.class_id = class_id
    header.weight = weight
    header.body_size = body_size
    header.properties = properties
    return header


def _read_short_string(data: bytes, at: int) -> tuple[str, int]:
    """The short string at `at` (a length byte, then UTF-8) and the offset after it."""
    end = at + 1 + data[at]
    if end > len(data):
        raise ValueError("short string past the end of the frame")
    return data[at + 1 : end].decode(), end
