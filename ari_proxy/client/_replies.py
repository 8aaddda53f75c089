"""Turning a server's reply into a `Result` or one of the package's exceptions.

Our servers say what went wrong in `status` and `code`; Go servers only in the `error` text, so
its known shapes (`Non-2XX response: 404 Not Found`, `ARI connection is down`, ...) are parsed.
Either way the proxy client raises the same exception the native client raises for the same
failure, and data comes back in ARI's own shape (Go's reshaped `config` and `log` are mapped back).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec

from .._exceptions import (
    AriError,
    AriProxyError,
    BadRequestError,
    ConnectionDownError,
    NotFoundError,
    RequestTimeout,
    UnknownKindError,
    error_for_status,
)
from ..api._backend import Result
from ..protocol import EntityData, Response
from ..protocol._kinds import KindSpec, Reply

__all__ = ["error_from_reply", "result_from_reply"]

_NON_2XX = re.compile(r"Non-2XX response: (\d{3}) ?(.*)$")
_object = msgspec.json.Decoder(dict[str, Any])


def error_from_reply(reply: Response) -> AriProxyError:
    """The exception a failed reply stands for."""
    text = reply.error
    code = reply.code
    if code == "ari_down" or text == "ARI connection is down":
        return ConnectionDownError(text)
    if code == "not_implemented" or text == "Not implemented":
        return UnknownKindError(text)
    if code == "timeout":
        return RequestTimeout(text)
    status = reply.status
    reason = ""
    match = _NON_2XX.search(text)
    if match:
        status = status or int(match.group(1))
        reason = match.group(2)
    if status:
        return error_for_status(status, text, reason=reason, message=reply.message)
    if code == "not_found" or text == "not found":
        return NotFoundError(text, status=404, reason="Not Found")
    if code == "bad_request" or not code:
        # Go's literal validation errors ("OriginateRequest is mandatory", "wrong key type",
        # "channel key not supplied", ...) are all refusals of a malformed request.
        return BadRequestError(text, status=400)
    return AriError(text)


def _go_config_to_tuples(raw: bytes) -> bytes:
    # Go's ConfigData: {"key":..,"Class":..,"Type":..,"Name":..,"Fields":[{attribute,value}]}.
    body = _object.decode(raw)
    return msgspec.json.encode(body.get("Fields") or [])


def _go_log_to_ari(raw: bytes) -> bytes:
    # Go's LogData has `levels`/`types`; ARI's LogChannel has `configuration`/`type`. Our
    # servers send both; fill ARI's names from Go's when only Go's are there.
    body = _object.decode(raw)
    body.setdefault("configuration", body.get("levels", ""))
    body.setdefault("type", body.get("types", ""))
    return msgspec.json.encode(body)


def result_from_reply(spec: KindSpec, reply: Response) -> Result:
    """The `Result` a successful reply carries for a request of kind `spec`."""
    result = Result(key=reply.key, keys=list(reply.keys))
    data: EntityData | None = reply.data
    if spec.reply is Reply.VARIABLE:
        result.variable = (data.variable if data is not None else None) or ""
    elif spec.reply is Reply.DATA and data is not None:
        raw = getattr(data, spec.data, None)
        if raw:
            body = bytes(raw)
            if spec.data == "config":
                body = _go_config_to_tuples(body)
            elif spec.data == "log":
                body = _go_log_to_ari(body)
            elif spec.data == "file":
                body = base64.b64decode(msgspec.json.decode(body, type=str))
            result.data = body
    return result
