"""Request dispatch: decode a bus request, run its kind through the kind table, shape the reply.

There is one code path for every kind: `Executor` interprets the kind's row against Asterisk,
and `shape_reply` turns the raw result into the reply shape the row names (PROTOCOL.md §3.1).
Nothing here knows individual kinds, except the few reply shapes where Go's structs differ from
Asterisk's JSON (`config`, `log`, and the binary `file` of our own `RecordingStoredFile`).

Every failure becomes a reply: `error` holds Go's wording (Go clients read only that), `status`
the HTTP status of an ARI error, `code` an `ErrorCode` and `message` Asterisk's explanation.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from .._exceptions import (
    AriError,
    ConnectionDownError,
    NotFoundError,
    ProtocolError,
    RequestTimeout,
    TransportError,
    UnknownKindError,
)
from ..ari._executor import Executor
from ..protocol import (
    EntityData,
    ErrorCode,
    Key,
    KindSpec,
    Reply,
    Request,
    RequestClass,
    Response,
    decode_request,
    entity_with_key,
    split_config_id,
    valid_token,
    variable_data,
)
from ..protocol._dialogs import DialogRouter
from ..protocol._kinds import KINDS, Call
from ..spec._operations import OPERATIONS
from ._logging import RateLimiter

__all__ = [
    "ARI_DOWN_TEXT",
    "Dispatcher",
    "Outcome",
    "error_response",
    "shape_data",
]

logger = logging.getLogger(__name__)

ARI_DOWN_TEXT = "ARI connection is down"
"""Go's reply while the ARI WebSocket is down (PROTOCOL.md §3.2 rule 1)."""

_RAW_DATA_FIELDS = frozenset({"asterisk", "asterisk_ping", "rtp_statistics", "variables"})
"""Data fields that carry Asterisk's JSON as it is: Go's AsteriskInfo has no key, and our own
kinds' replies are Asterisk's objects."""

_CODE_BY_STATUS = {404: ErrorCode.NOT_FOUND}

_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


class _ConfigData(msgspec.Struct):
    """Go's `ari.ConfigData`: no JSON tags, hence the capitalised names."""

    key: Key
    Class: str
    Type: str
    Name: str
    Fields: msgspec.Raw


class _TooLarge(Exception):
    """A binary reply exceeds what the bus can carry."""


def error_response(text: str, code: str, *, status: int = 0, message: str = "") -> Response:
    """An error reply: Go's text in `error`, our machine code and the HTTP status beside it."""
    return Response(error=text, status=status, code=code, message=message)


def shape_data(field: str, body: bytes, key: Key | None) -> EntityData:
    """The `data` of a reply: Asterisk's JSON `body` in the shape Go's struct for `field` has.

    Entities get the (stamped) request key spliced in first, as Go's data structs start with
    it. `config` becomes Go's ConfigData (class, type and name from the key, fields from
    Asterisk's tuples); `log` gets Go's LogData members `levels` and `types`, filled from
    Asterisk's `configuration` and `type` (Go leaves them empty: weakness 19), and keeps
    Asterisk's own members.

    Raises:
        ProtocolError: `body` is not the JSON the field needs.
    """
    key = key or Key()
    if field in _RAW_DATA_FIELDS:
        raw = msgspec.Raw(body)
    elif field == "config":
        raw = _config_data(body, key)
    elif field == "log":
        raw = _log_data(body, key)
    else:
        raw = entity_with_key(body, key)
    return _entity_data(field, raw)


def _entity_data(field: str, raw: msgspec.Raw) -> EntityData:
    members: dict[str, Any] = {field: raw}
    return EntityData(**members)


def _config_data(body: bytes, key: Key) -> msgspec.Raw:
    try:
        tuples = _raw_list.decode(body or b"[]")
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"Asterisk's config tuples are not a JSON list: {exc}") from None
    cls, type_, name = split_config_id(key.id) or ("", "", key.id)
    fields = msgspec.Raw(msgspec.json.encode(tuples))
    return msgspec.Raw(msgspec.json.encode(_ConfigData(key, cls, type_, name, fields)))


def _log_data(body: bytes, key: Key) -> msgspec.Raw:
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


@dataclass(slots=True)
class Outcome:
    """What dispatching one request produced.

    Attributes:
        response: the reply to send, or None when the request is for another server.
        kind: the request's kind (for logs; `""` when it could not be read).
        bad_input: whether the request itself was faulty (logged at WARNING).
    """

    response: Response | None
    kind: str = ""
    bad_input: bool = False


class Dispatcher:
    """Executes requests for the applications of one server.

    Args:
        executors: one `Executor` per application (it stamps that application on keys).
        router: where dialog bindings go.
        node: the current Asterisk entity ID.
        request_timeout: seconds a request may take in all.
        file_limit: the largest binary file (bytes) a reply may carry, read per request (it
            depends on the bus).
    """

    def __init__(
        self,
        executors: Mapping[str, Executor],
        router: DialogRouter,
        *,
        node: Callable[[], str],
        request_timeout: float,
        file_limit: Callable[[], int],
    ) -> None:
        self.executors = executors
        self.router = router
        self._node = node
        self.request_timeout = request_timeout
        self._file_limit = file_limit
        self._limiter = RateLimiter(10.0)

    async def dispatch(self, app: str, cls: RequestClass, data: bytes) -> Outcome:
        """Handle one request received for `app` on a subject of class `cls`."""
        try:
            request = decode_request(data)
        except ProtocolError as exc:
            return Outcome(error_response(str(exc), ErrorCode.BAD_REQUEST), bad_input=True)
        kind = request.kind
        key = request.key
        problem = _check_key(key)
        if problem is not None:
            return Outcome(error_response(problem, ErrorCode.BAD_REQUEST), kind, bad_input=True)
        node = self._node()
        if key is not None and (key.app not in ("", app) or key.node not in ("", node)):
            # Another server's request (Go executes it anyway: weakness 8). On a queue group
            # it reached only us, so say why it cannot run; otherwise let its server answer.
            if cls is not RequestClass.CREATE:
                return Outcome(None, kind)
            where = f"application {key.app or app!r} on node {key.node or node!r}"
            text = f"request for {where} reached application {app!r} on node {node!r}"
            return Outcome(error_response(text, ErrorCode.BAD_REQUEST), kind, bad_input=True)
        executor = self.executors[app]
        spec = KINDS.get(kind)
        try:
            payload = getattr(request, spec.payload) if spec and spec.payload else None
            call = executor.prepare(kind, key, payload)
        except UnknownKindError as exc:
            return Outcome(error_response(str(exc), ErrorCode.NOT_IMPLEMENTED), kind, True)
        except (AriError, ValueError) as exc:
            return Outcome(error_response(str(exc), ErrorCode.BAD_REQUEST), kind, True)
        assert spec is not None  # prepare() raised for an unknown kind
        try:
            async with asyncio.timeout(self.request_timeout):
                return Outcome(await self._run(executor, spec, call, request), kind)
        except RequestTimeout as exc:  # before TimeoutError: it is one
            return Outcome(error_response(str(exc), ErrorCode.TIMEOUT), kind)
        except TimeoutError:
            text = f"{kind}: Asterisk did not answer within {self.request_timeout:g}s"
            return Outcome(error_response(text, ErrorCode.TIMEOUT), kind)
        except AriError as exc:
            code = _CODE_BY_STATUS.get(exc.status, ErrorCode.ARI_ERROR)
            if exc.status == 0:
                code = ErrorCode.BAD_REQUEST
            response = error_response(str(exc), code, status=exc.status, message=exc.message)
            return Outcome(response, kind)
        except _TooLarge as exc:
            return Outcome(error_response(str(exc), ErrorCode.TOO_LARGE), kind)
        except (ConnectionDownError, TransportError) as exc:
            # Asterisk went away mid-request: Go's text, and ours beside it.
            return Outcome(error_response(ARI_DOWN_TEXT, ErrorCode.ARI_DOWN, message=str(exc)))
        except (ProtocolError, msgspec.DecodeError) as exc:  # Asterisk's answer, not the request
            text = f"{kind}: unexpected answer from Asterisk: {exc}"
            return Outcome(error_response(text, ErrorCode.ARI_ERROR), kind)
        except (ValueError, TypeError) as exc:
            # A value Asterisk cannot take (an ID of "..", a number where a word goes): refused
            # before any HTTP request was made.
            return Outcome(error_response(str(exc), ErrorCode.BAD_REQUEST), kind, True)

    async def _run(
        self, executor: Executor, spec: KindSpec, call: Call, request: Request
    ) -> Response:
        if spec.operation is not None and OPERATIONS[spec.operation].response == "binary":
            return await self._binary(executor, spec, request)
        dialog = call.key.dialog
        # Bound before Asterisk is asked, as Go does: the first events of a new playback or
        # channel can arrive on the WebSocket before the HTTP answer does.
        added = self.router.bind_all(dialog, executor.bindings(call)) if dialog else []
        try:
            result = await executor.run(call, timeout=self.request_timeout)
        except BaseException:
            for entity in added:  # the entity was not created: leave no binding behind
                self.router.unbind(dialog, *entity)
            raise
        reply = spec.reply
        if reply is Reply.OK:
            return Response()
        if reply is Reply.DATA:
            return Response(data=shape_data(spec.data, result.data or b"{}", result.key))
        if reply is Reply.VARIABLE:
            return Response(data=variable_data(result.variable or ""))
        if reply is Reply.KEYS:
            return Response(keys=tuple(result.keys))
        if result.key is None:  # existence checks never answer without a key (weakness 14)
            raise NotFoundError("not found", status=404, reason="Not Found")
        return Response(key=result.key)

    async def _binary(self, executor: Executor, spec: KindSpec, request: Request) -> Response:
        """A binary download (a stored recording's file), base64 in `data.<field>` when it
        fits in a reply; read chunk by chunk so a huge file is refused without loading it."""
        limit = self._file_limit()
        key = request.key or Key()
        chunks: list[bytes] = []
        size = 0
        async with executor.stream(spec.name, request.key, timeout=self.request_timeout) as body:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(
                        f"{spec.name} '{key.id}': the file is larger than {limit} bytes, the "
                        "most a reply carries over this bus; fetch it from Asterisk's ARI "
                        "(GET /recordings/stored/{name}/file) or raise proxy.max_file_size"
                    )
                chunks.append(chunk)
        encoded = base64.b64encode(b"".join(chunks))
        raw = msgspec.Raw(msgspec.json.encode(encoded.decode("ascii")))
        return Response(data=_entity_data(spec.data, raw))

    def log_bad_input(self, outcome: Outcome, subject: str, app: str) -> None:
        """A faulty request at WARNING, at most one per 10 s per kind of fault (never the body)."""
        response = outcome.response
        if response is None:
            return
        held = self._limiter.allow(f"{response.code}:{outcome.kind[:64]}")
        if held is None:
            return
        logger.warning(
            "refused a request: %s",
            response.error[:300],
            extra={
                "kind": outcome.kind[:64],
                "subject": subject,
                "app": app,
                "code": response.code,
                "suppressed": held,
            },
        )


def _check_key(key: Key | None) -> str | None:
    """Why the key's routing fields cannot be used, or None.

    App, node and dialog become subject tokens (replies are stamped with them, dialog copies
    are published on `<prefix>dialogevent.<dialog>`), so a wildcard or a dot there is refused.
    """
    if key is None:
        return None
    for name, value in (("app", key.app), ("node", key.node), ("dialog", key.dialog)):
        if value and not valid_token(value):
            return (
                f"key.{name} {value[:100]!r} cannot be a subject token: it must not contain '.', "
                "'*', '>', '#', spaces or control characters"
            )
    return None
