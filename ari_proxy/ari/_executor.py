"""Runs request kinds against one Asterisk: the interpreter of the kind table.

The proxy server executes every bus request here, and the native client executes its own calls
here too, so both share one path from kind to ARI call: `execute` validates the request, binds
its dialog, calls Asterisk and returns a `Result` with the raw JSON Asterisk returned. The
server encodes it for the bus (`ari_proxy.protocol.encode_result`), the clients decode it into
models.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from .._exceptions import (
    AriError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeout,
    UnknownKindError,
)
from ..protocol import KINDS, Args, DialogRouter, Invocation, Key, KindName, Reply, Result, new_id
from ..spec import OPERATIONS
from ._http import RestTransport

__all__ = ["Executor", "go_error_text"]

logger = logging.getLogger(__name__)

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_object = msgspec.json.Decoder(dict[str, Any])


def go_error_text(status: int, reason: str) -> str:
    """How the Go ARI library words a non-2xx answer."""
    return f"Non-2XX response: {status} {reason}"


# Kind -> the ARI operation it calls, looked up once rather than on every request.
_OPERATION_OF = {k.name: OPERATIONS[k.operation] for k in KINDS.values() if k.operation}

_REQUIRED_MESSAGES = {
    "channel_originate": "OriginateRequest is mandatory",
    "channel_external_media": "ExternalMediaOptions is required",
}


def _set_generated(payload: Any, where: str, value: str) -> Any:
    """Copy of `payload` with the dotted attribute `where` set to `value` (frozen structs)."""
    head, _, rest = where.partition(".")
    if not rest:
        return msgspec.structs.replace(payload, **{head: value})
    inner = getattr(payload, head)
    return msgspec.structs.replace(payload, **{head: _set_generated(inner, rest, value)})


def _get_path(payload: Any, where: str) -> Any:
    for part in where.split("."):
        payload = getattr(payload, part)
    return payload


class Executor:
    """Executes request kinds over one REST transport.

    Args:
        http: the REST transport to Asterisk (`HttpTransport`, or `WebSocketRest` for REST
            over the events WebSocket).
        application: the application stamped on returned keys and used where a kind needs one.
        node: returns the Asterisk entity ID stamped on returned keys (it can change on reconnect).
    """

    def __init__(self, http: RestTransport, application: str, node: Callable[[], str]) -> None:
        self.http = http
        self.application = application
        self._node = node

    def prepare(self, kind: str, key: Key | None, payload: Any) -> Invocation:
        """Validate a request and fill the IDs it leaves for the executor to generate.

        Raises:
            UnknownKindError: no such kind ("Not implemented", as Go says).
            InvalidRequestError: key or payload missing or unusable.
        """
        spec = KINDS.get(kind)
        if spec is None:
            raise UnknownKindError("Not implemented")
        if key is None:
            if spec.needs_id:
                raise InvalidRequestError(f"{spec.entity or 'entity'} key not supplied")
            key = Key()
        if payload is None and spec.payload_required:
            message = _REQUIRED_MESSAGES.get(spec.payload or "", f"{spec.payload} is required")
            raise InvalidRequestError(message)
        if spec.needs_id and not key.id:
            raise InvalidRequestError(f"{spec.entity or 'entity'} key not supplied")
        call = Invocation(spec, key, payload, self.application, self._node())
        problem = spec.validate(call) if spec.validate is not None else None
        if problem is not None:
            raise InvalidRequestError(problem)
        if spec.generate is not None:
            where, suffix = spec.generate
            if where == "key":
                if not key.id:
                    call.generated = new_id(suffix)
            elif payload is not None and not _get_path(payload, where):
                call.generated = new_id(suffix)
        return call

    @staticmethod
    def bindings(call: Invocation) -> tuple[tuple[str, str], ...]:
        """The dialog bindings `(entity kind, id)` a prepared call asks for (none without a
        dialog)."""
        if not call.key.dialog or call.spec.binds is None:
            return ()
        return tuple((kind, ident) for kind, ident in call.spec.binds(call) if kind and ident)

    def execute(
        self,
        kind: KindName,
        key: Key | None,
        payload: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        router: DialogRouter | None = None,
    ) -> Coroutine[Any, Any, Result]:
        """Run one request kind; await the result.

        A key with a dialog binds the dialog (in `router`) to the entities the kind concerns
        before Asterisk is asked, because the first events of a new entity can arrive on the
        WebSocket before the HTTP answer does; the bindings are undone when the call fails.
        `retries` more attempts follow a timeout. The request is validated at once (a plain
        function, not a coroutine, so the common case costs no extra frame).

        Raises:
            UnknownKindError, InvalidRequestError: see `prepare`.
            AriError: Asterisk refused (the text is worded as the Go reference words it).
            RequestTimeout, TransportError: Asterisk did not answer.
        """
        call = self.prepare(kind, key, payload)
        if not retries and (router is None or not call.key.dialog):
            return self.run(call, timeout=timeout)  # the common case, kept short
        return self._bound(call, timeout, retries, router)

    async def _bound(
        self, call: Invocation, timeout: float | None, retries: int, router: DialogRouter | None
    ) -> Result:
        dialog = call.key.dialog
        added = router.bind_all(dialog, self.bindings(call)) if router is not None else []
        try:
            for attempt in range(retries + 1):
                try:
                    return await self.run(call, timeout=timeout)
                except RequestTimeout:
                    if attempt == retries:
                        raise
                    logger.debug("%s timed out, retrying", call.spec.name)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            if router is not None:
                for entity in added:  # the entity was not created: leave no binding behind
                    router.unbind(dialog, *entity)
            raise

    async def run(self, call: Invocation, *, timeout: float | None = None) -> Result:
        """Execute a prepared call."""
        spec = call.spec
        try:
            if spec.check is not None:
                op = OPERATIONS[spec.check]
                await self.http.request(op, {op.path_params[0]: call.key.id}, timeout=timeout)
            body = b""
            if spec.args is not None:
                args: Args = spec.args(call)
                op = _OPERATION_OF[spec.name]
                response = await self.http.request(
                    op, args.path, args.query, args.body, timeout=timeout
                )
                body = response.body
        except AriError as exc:
            raise self._wrap(call, exc) from None
        return self._result(call, body)

    def _wrap(self, call: Invocation, exc: AriError) -> AriError:
        source = ""
        if call.spec.payload == "application_subscribe" and call.payload is not None:
            source = call.payload.event_source
        text = call.spec.wrap.format(
            error=go_error_text(exc.status, exc.reason), id=call.key.id, source=source
        )
        return type(exc)(text, status=exc.status, reason=exc.reason, message=exc.message)

    def _stamp(self, key: Key, call: Invocation) -> Key:
        return key.stamp(call.node, self.application)

    def _result(self, call: Invocation, body: bytes) -> Result:
        spec = call.spec
        reply = spec.reply
        if reply is Reply.OK:
            return Result()
        if reply is Reply.DATA:
            if spec.select:
                body = self._select(call, body, spec.select)
            return Result(key=self._stamp(call.key, call), data=body or b"{}")
        if reply is Reply.VARIABLE:
            value = _object.decode(body).get("value") if body else ""
            return Result(variable=value if isinstance(value, str) else "")
        if reply is Reply.KEY_REQUEST:
            if spec.select:
                self._select(call, body, spec.select)
            key = call.key
            if spec.result:
                key = Key(spec.result, key.id, key.node, key.dialog, key.app)
            if callable(spec.result_id):
                key = Key(key.kind, spec.result_id(call), key.node, key.dialog, key.app)
            elif call.generated and spec.generate is not None and spec.generate[0] == "key":
                key = Key(key.kind or spec.entity, call.generated, key.node, key.dialog, key.app)
            return Result(key=self._stamp(key, call))
        if reply is Reply.KEY_RESULT:
            ident = spec.result_id(call) if callable(spec.result_id) else ""
            return Result(key=Key(spec.result, ident).stamp(call.node, self.application))
        return self._list(call, body)

    def _select(self, call: Invocation, body: bytes, member: str) -> bytes:
        for raw in _raw_list.decode(body or b"[]"):
            entry = _object.decode(raw)
            if entry.get(member) == call.key.id:
                return bytes(raw)
        raise NotFoundError("not found", status=404, reason="Not Found")

    def _list(self, call: Invocation, body: bytes) -> Result:
        spec = call.spec
        member = spec.result_id if isinstance(spec.result_id, str) else "id"
        keys: list[Key] = []
        entities: list[bytes] = []
        for raw in _raw_list.decode(body or b"[]"):
            entry = _object.decode(raw)
            if member == "technology/resource":
                ident = f"{entry.get('technology', '')}/{entry.get('resource', '')}"
            else:
                value = entry.get(member, "")
                ident = value if isinstance(value, str) else str(value)
            key = Key(spec.result, ident, call.node, "", self.application)
            if spec.filter_by_key and not call.key.match(key):
                continue
            keys.append(key)
            entities.append(bytes(raw))
        return Result(keys=keys, entities=entities)

    @asynccontextmanager
    async def stream(
        self, kind: KindName, key: Key | None, *, timeout: float | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a binary download kind (`RecordingStoredFile`) as a stream of chunks."""
        call = self.prepare(kind, key, None)
        spec = call.spec
        if spec.operation is None or spec.args is None:
            raise UnknownKindError(f"{kind} has no binary response")
        args = spec.args(call)
        op = OPERATIONS[spec.operation]
        try:
            async with self.http.stream(op, args.path, timeout=timeout) as chunks:
                yield chunks
        except AriError as exc:
            raise self._wrap(call, exc) from None
