"""Go-compatible JSON: one encoder, Go's HTML escaping, decoding that raises `ProtocolError`,
and byte splicing of members into JSON objects.

Encoding sorts map keys, as Go's `encoding/json` does; struct fields keep their declared
order, which the message structs make Go's order, so encodings are byte-identical to Go's
once `go_escape` is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias, TypeVar

import msgspec

from ._errors import ProtocolError

__all__ = ["Buffer", "decode", "encode", "go_escape"]

T = TypeVar("T")

EMPTY_RAW: Final = msgspec.Raw()
"""The default of optional raw-JSON fields: empty, falsy, and omitted by `omit_defaults`
(which compares by identity), so it is never encoded."""

Buffer: TypeAlias = bytes | bytearray | memoryview
"""What the decoders accept: any bytes-like JSON document."""

# "deterministic" sorts dict keys (Go sorts map keys) and leaves struct field order alone.
_ENCODER = msgspec.json.Encoder(order="deterministic")
# Rebuilding an object from its members must keep their order, so it uses an unsorted encoder.
_MEMBER_ENCODER = msgspec.json.Encoder()
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}

_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_WHITESPACE = frozenset(b" \t\r\n")


def kept(default: T, *, name: str | None = None) -> T:
    """A struct field default that is encoded even under `omit_defaults` (a Go field without
    `omitempty`). msgspec treats only empty-collection factories as defaults, so a field whose
    default comes from any other factory is always written; a test pins this behaviour."""
    return msgspec.field(default_factory=lambda: default, name=name)


def encode(obj: object) -> bytes:
    """`obj` as compact JSON, map keys sorted and struct fields in declared order."""
    return _ENCODER.encode(obj)


def go_escape(data: bytes) -> bytes:
    """`data` with `<`, `>`, `&`, U+2028 and U+2029 escaped as Go's `json.Marshal` escapes them.

    Only needed for byte-identity with Go: the unescaped form is the same JSON. Safe on any
    JSON text, since these characters can only occur inside strings.
    """
    for raw, escaped in _GO_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def decode(data: Buffer, type_: type[T], *, what: str) -> T:
    """Decode the JSON document `data` as `type_`; raise `ProtocolError` naming `what` if it
    is not JSON or not of that shape. Unknown object members are ignored."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        decoder = _DECODERS[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid {what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid {what}: not JSON ({exc})") from exc
    except RecursionError as exc:
        raise ProtocolError(f"invalid {what}: JSON nested too deeply") from exc


def splice_front(obj: bytes, members: bytes) -> bytes:
    """The JSON object `obj` with `members` (`"name":value,...`) inserted before its first
    member. `obj` must be a JSON object, possibly surrounded by whitespace."""
    start = obj.find(b"{")
    if start < 0 or obj[:start].strip():
        raise ProtocolError("expected a JSON object")
    pos = start + 1
    end = len(obj)
    while pos < end and obj[pos] in _WHITESPACE:
        pos += 1
    separator = b"" if obj[pos : pos + 1] == b"}" else b","
    return b"".join((obj[: start + 1], members, separator, obj[start + 1 :]))


def replace_members(obj: Buffer, values: Mapping[str, bytes], *, what: str) -> bytes:
    """The JSON object `obj` with the named members set to the given JSON values.

    Existing members keep their position and the other members their raw bytes; new ones go
    first, in the order given. This re-encodes the top level, so it is the slow path of the
    splicing helpers.
    """
    try:
        members = _MEMBERS.decode(obj)
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise ProtocolError(f"invalid {what}: expected a JSON object ({exc})") from exc
    added = {name: msgspec.Raw(value) for name, value in values.items() if name not in members}
    for name, value in values.items():
        if name not in added:
            members[name] = msgspec.Raw(value)
    return _MEMBER_ENCODER.encode({**added, **members} if added else members)
