"""What a request kind produced (`Result`), and how it travels as a reply (`Response`).

Both directions of the reply codec sit here side by side, without I/O:

- the server answers a kind's result with `encode_result`, and the proxy client reads the reply
  back into the same `Result` with `decode_result`;
- the server answers a failure with `error_reply`, and the client raises `reply_error` for it.
  Our servers say what failed in `status` and `code`; Go's only in the `error` text, whose
  known shapes (`Non-2XX response: 404 Not Found`, `ARI connection is down`, ...) are parsed.

Go's reply structs differ from Asterisk's JSON in three places, each mapped both ways here:
`config` (Go's ConfigData: class, type and name beside the fields), `log` (Go's LogData names
`levels` and `types`), and the binary `file` of our own RecordingStoredFile (base64 in a JSON
string). Everything else travels as Asterisk wrote it, with the key spliced in first where
Go's data structs start with one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .._exceptions import (
    AriError,
    AriProxyError,
    ConnectionDownError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeout,
    TooLargeError,
    TransportError,
    UnknownKindError,
    error_for_status,
)
from ._errors import ProtocolError
from ._key import Key
from ._kinds import KindSpec, Reply, split_config_id
from ._messages import EntityData, ErrorCode, Response, entity_with_key, variable_data

__all__ = [
    "ARI_DOWN_TEXT",
    "Result",
    "decode_result",
    "encode_result",
    "error_reply",
    "error_response",
    "reply_error",
]

ARI_DOWN_TEXT = "ARI connection is down"
"""Go's reply while the server's ARI connection is down."""

_RAW_DATA_FIELDS = frozenset({"asterisk", "asterisk_ping", "rtp_statistics", "variables"})
"""Data fields that carry Asterisk's JSON as it is: Go's AsteriskInfo has no key, and our own
kinds' replies are Asterisk's objects."""

_NON_2XX = re.compile(r"Non-2XX response: (\d{3}) ?(.*)$")
_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
_object = msgspec.json.Decoder(dict[str, Any])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(slots=True)
class Result:
    """What a request kind produced, the same whichever way it ran.

    Attributes:
        key: the key of a Get, create or stage reply (stamped with node and app).
        keys: the keys of a list reply.
        data: the entity (or other JSON) Asterisk returned, raw, in ARI's own shape; for a
            binary kind, the file's bytes.
        entities: the raw JSON of each listed entity, in the order of `keys`, when known.
        variable: the value of a variable read.
    """

    key: Key | None = None
    keys: Sequence[Key] = ()
    data: bytes | None = None
    entities: Sequence[bytes] = ()
    variable: str | None = None


# --- results ---------------------------------------------------------------------------------


def encode_result(spec: KindSpec, result: Result) -> Response:
    """The reply a server sends for `result`, in the shape the kind's row names.

    A kind that answers with a key and found none answers "not found", never an empty success
    (Go answers `{"error":""}` there; docs/protocol.md, "Go defects fixed", 14).

    Raises:
        ProtocolError: Asterisk's JSON is not what the reply shape needs.
    """
    reply = spec.reply
    if reply is Reply.OK:
        return Response()
    if reply is Reply.DATA:
        return Response(data=_shape_data(spec.data, result.data or b"", result.key))
    if reply is Reply.VARIABLE:
        return Response(data=variable_data(result.variable or ""))
    if reply is Reply.KEYS:
        return Response(keys=tuple(result.keys))
    if result.key is None:
        return error_reply(NotFoundError("not found", status=404, reason="Not Found"))
    return Response(key=result.key)


def decode_result(spec: KindSpec, response: Response) -> Result:
    """The `Result` a successful reply to a request of kind `spec` carries."""
    result = Result(key=response.key, keys=list(response.keys))
    data: EntityData | None = response.data
    if spec.reply is Reply.VARIABLE:
        result.variable = (data.variable if data is not None else None) or ""
    elif spec.reply is Reply.DATA and data is not None:
        raw = getattr(data, spec.data, None)
        if raw:
            result.data = _unshape_data(spec.data, bytes(raw))
    return result


class _ConfigData(msgspec.Struct):
    """Go's `ari.ConfigData`: no JSON tags, hence the capitalised names."""

    key: Key
    Class: str
    Type: str
    Name: str
    Fields: msgspec.Raw


def _shape_data(field: str, body: bytes, key: Key | None) -> EntityData:
    """The `data` of a reply: Asterisk's JSON `body` in the shape Go's struct for `field` has."""
    key = key or Key()
    if field == "file":
        raw = msgspec.Raw(msgspec.json.encode(base64.b64encode(body).decode("ascii")))
    elif field in _RAW_DATA_FIELDS:
        raw = msgspec.Raw(body or b"{}")
    elif field == "config":
        raw = _go_config(body, key)
    elif field == "log":
        raw = _go_log(body or b"{}", key)
    else:
        raw = entity_with_key(body or b"{}", key)
    members: dict[str, Any] = {field: raw}
    return EntityData(**members)


def _unshape_data(field: str, raw: bytes) -> bytes:
    """Asterisk's JSON (or a file's bytes) back from the `data` member `field`."""
    if field == "file":
        return base64.b64decode(msgspec.json.decode(raw, type=str))
    if field == "config":
        # Go's ConfigData: {"key":..,"Class":..,"Type":..,"Name":..,"Fields":[...]}.
        return msgspec.json.encode(_object.decode(raw).get("Fields") or [])
    if field == "log":
        # Our servers send ARI's names and Go's; a Go server only Go's (always empty).
        body = _object.decode(raw)
        body.setdefault("configuration", body.get("levels", ""))
        body.setdefault("type", body.get("types", ""))
        return msgspec.json.encode(body)
    return raw


def _go_config(body: bytes, key: Key) -> msgspec.Raw:
    """Go's ConfigData: class, type and name from the key, fields from Asterisk's tuples."""
    try:
        tuples = _raw_list.decode(body or b"[]")
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"Asterisk's config tuples are not a JSON list: {exc}") from None
    cls, type_, name = split_config_id(key.id) or ("", "", key.id)
    fields = msgspec.Raw(msgspec.json.encode(tuples))
    return msgspec.Raw(msgspec.json.encode(_ConfigData(key, cls, type_, name, fields)))


def _go_log(body: bytes, key: Key) -> msgspec.Raw:
    """Asterisk's LogChannel with Go's LogData members first: `levels` and `types`, filled
    from `configuration` and `type` (Go leaves them empty: docs/protocol.md, "Go defects
    fixed", 19)."""
    try:
        members = _members.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"Asterisk's log channel is not a JSON object: {exc}") from None
    empty = msgspec.Raw(b'""')
    shaped: dict[str, msgspec.Raw] = {
        "key": msgspec.Raw(msgspec.json.encode(key)),
        "channel": members.get("channel", empty),
        "levels": members.get("configuration", empty),
        "types": members.get("type", empty),
        "status": members.get("status", empty),
    }
    for name, value in members.items():
        shaped.setdefault(name, value)
    # Plain msgspec encoding keeps insertion order (the protocol encoder would sort the keys).
    return msgspec.Raw(msgspec.json.encode(shaped))


# --- errors ----------------------------------------------------------------------------------


def error_response(text: str, code: str, *, status: int = 0, message: str = "") -> Response:
    """An error reply: Go's text in `error`, our machine code and the HTTP status beside it."""
    return Response(error=text, status=status, code=code, message=message)


def error_reply(exc: AriProxyError) -> Response:
    """The reply a server sends for a failure: Go's wording in `error` (Go clients read only
    that), the HTTP status of an ARI error in `status`, an `ErrorCode` in `code`, and
    Asterisk's explanation in `message`."""
    # An `AriError`'s `str()` adds Asterisk's message, which travels in `message` instead.
    text = exc.text if isinstance(exc, AriError) else str(exc)
    if isinstance(exc, UnknownKindError):
        return error_response(text, ErrorCode.NOT_IMPLEMENTED)
    if isinstance(exc, InvalidRequestError):
        return error_response(text, ErrorCode.BAD_REQUEST)
    if isinstance(exc, AriError):
        if exc.status == 0:
            return error_response(text, ErrorCode.BAD_REQUEST, message=exc.message)
        code = ErrorCode.NOT_FOUND if exc.status == 404 else ErrorCode.ARI_ERROR
        return error_response(text, code, status=exc.status, message=exc.message)
    if isinstance(exc, RequestTimeout):
        return error_response(text, ErrorCode.TIMEOUT)
    if isinstance(exc, TooLargeError):
        return error_response(text, ErrorCode.TOO_LARGE)
    if isinstance(exc, TransportError):
        # Asterisk is away: Go's text, and what happened beside it.
        return error_response(ARI_DOWN_TEXT, ErrorCode.ARI_DOWN, message=text)
    if isinstance(exc, ProtocolError):
        return error_response(text, ErrorCode.BAD_REQUEST)
    return error_response(text, ErrorCode.INTERNAL)


def reply_error(response: Response) -> AriProxyError:
    """The exception a failed reply stands for, from our server or a Go one."""
    text = response.error
    code = response.code
    if code == ErrorCode.ARI_DOWN or text == ARI_DOWN_TEXT:
        return ConnectionDownError(text)
    if code == ErrorCode.NOT_IMPLEMENTED or text == "Not implemented":
        return UnknownKindError(text)
    if code == ErrorCode.TIMEOUT:
        return RequestTimeout(text)
    if code == ErrorCode.TOO_LARGE:
        return TooLargeError(text)
    status = response.status
    reason = ""
    match = _NON_2XX.search(text)
    if match:
        status = status or int(match.group(1))
        reason = match.group(2)
    if status:
        return error_for_status(status, text, reason=reason, message=response.message)
    if code == ErrorCode.NOT_FOUND or text == "not found":
        return NotFoundError(text, status=404, reason="Not Found")
    if code == ErrorCode.BAD_REQUEST or not code:
        # Go's literal validation errors ("OriginateRequest is mandatory", "wrong key type",
        # "channel key not supplied", ...) are all refusals of a malformed request.
        return InvalidRequestError(text, status=400, message=response.message)
    return AriError(text, message=response.message)
