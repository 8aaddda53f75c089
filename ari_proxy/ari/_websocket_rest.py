"""REST over the events WebSocket (Asterisk 20.14, 21.9, 22.4 and later).

A request is one text frame on the socket that carries the events,

    {"type": "RESTRequest", "request_id": "3", "method": "POST", "uri": "channels/x/answer?..",
     "content_type": "application/json", "message_body": "{..}"}

and its answer is a `RESTResponse` frame among the events, with the same `request_id`, a
`status_code`, a `reason_phrase` and the body as a JSON string in `message_body`. The `uri` is
the HTTP path and query relative to the ARI base, encoded by the same function as HTTP's
(`request_target`). Binary bodies (a stored recording's file) are refused with 406 on the
socket, so `stream()` goes over HTTP.

The pending table is bounded (a request waits for a slot within its deadline), a request is
sent by its caller's own task, so one that gave up before its turn is never sent, and when the
socket goes, every request in flight fails with `ConnectionDownError`.

The answers are events of the socket's applications, which has two consequences handled here:
an application event filter set over the socket lets them through (and reads back without
them), and after `ApplicationReplaced` (another socket took an application) requests go over
HTTP until the next connection, since Asterisk stops answering on this one once the other
closes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Protocol

import msgspec

from .._exceptions import ConnectionDownError, RequestTimeout
from ..spec import Operation
from ._http import Deadlines, HttpResponse, HttpTransport, ari_error, request_target

__all__ = [
    "REST_TRANSPORTS",
    "Sender",
    "WebSocketRest",
    "check_transport",
    "rest_over_websocket",
]

logger = logging.getLogger(__name__)

REST_TRANSPORTS = ("auto", "http", "websocket")
"""How REST requests travel: their own HTTP connections (`http`), the events WebSocket
(`websocket`), or the WebSocket when Asterisk's version has it and HTTP otherwise (`auto`)."""

_FIRST_WITH_REST = {20: (20, 14), 21: (21, 9), 22: (22, 4)}
"""The first release of each series with REST over WebSocket; every later series has it."""
_VERSION = re.compile(r"^(?:certified/)?(\d+)\.(\d+)")

MAX_FRAME = 65535
"""The largest text frame Asterisk reads (res_http_websocket): a longer one makes it close the
socket, and with it the application's events. A request that would need one goes over HTTP."""

_MARK = '"RESTResponse"'
_ANSWERS = {"type": "RESTResponse"}
"""The answers' event type, as an application event filter names it."""
_APPLICATION_OPS = frozenset(
    (
        "applications.list",
        "applications.get",
        "applications.subscribe",
        "applications.unsubscribe",
        "applications.filter",
    )
)
_MARK_BYTES = _MARK.encode()
_REPLACED = '"ApplicationReplaced"'
_REPLACED_BYTES = _REPLACED.encode()


def rest_over_websocket(version: str) -> bool:
    """Whether an Asterisk of `version` (`/asterisk/info` `system.version`, such as
    `22.10.1+dfsg-1`) takes REST requests on its events WebSocket; False when unsure."""
    match = _VERSION.match(version)
    if match is None:
        return False
    found = (int(match.group(1)), int(match.group(2)))
    first = _FIRST_WITH_REST.get(found[0])
    if first is None:
        return found[0] > max(_FIRST_WITH_REST)
    return found >= first


def check_transport(name: str) -> str:
    """`name` if it is one of `REST_TRANSPORTS`.

    Raises:
        ValueError: it is not, said with the choices.
    """
    if name not in REST_TRANSPORTS:
        choices = ", ".join(repr(t) for t in REST_TRANSPORTS)
        raise ValueError(f"unknown ARI transport {name!r}: choose one of {choices}")
    return name


class Sender(Protocol):
    """The sending half of a WebSocket (aiohttp's client and server sockets both fit)."""

    def send_str(self, data: str, compress: int | None = None) -> Awaitable[None]: ...


class _Request(msgspec.Struct, omit_defaults=True):
    type: str
    request_id: str
    method: str
    uri: str
    content_type: str = ""
    message_body: str = ""


class _Type(msgspec.Struct):
    type: str = ""


class _Response(msgspec.Struct):
    type: str = ""
    request_id: str = ""
    status_code: int = 0
    reason_phrase: str = ""
    message_body: msgspec.Raw = msgspec.Raw(b"")


_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(_Response).decode
_decode_text = msgspec.json.Decoder(str).decode
_decode_type = msgspec.json.Decoder(_Type).decode


class WebSocketRest:
    """Sends ARI requests on the events WebSocket; the `RestTransport` the executor uses with
    `transport="websocket"` or `"auto"` (which turns `enabled` off for an Asterisk without
    REST over WebSocket: requests then go over HTTP).

    Args:
        http: the HTTP transport, for binary downloads and the credentials in error texts.
        timeout: seconds a request may take (default: the HTTP transport's).
        max_pending: most requests awaiting an answer at once; more wait for a slot.
    """

    def __init__(
        self, http: HttpTransport, *, timeout: float | None = None, max_pending: int = 1024
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.http = http
        self.timeout = http.timeout if timeout is None else timeout
        self.max_pending = max_pending
        self.enabled = True
        """False: requests go over HTTP (`transport="auto"` with an Asterisk without REST
        over WebSocket)."""
        self.sent = 0
        """Requests written to a socket."""
        self.queued = 0
        """Requests waiting for a slot in the pending table right now."""
        self.late = 0
        """Answers that came after their request had given up (dropped, counted)."""
        self.too_large = 0
        """Requests sent over HTTP because their frame would pass `MAX_FRAME`."""
        self._socket: Sender | None = None
        self._replaced = False
        self._pending: dict[str, asyncio.Future[HttpResponse]] = {}
        self._free = max_pending
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ids = itertools.count(1)
        self._deadlines = Deadlines()

    @property
    def connected(self) -> bool:
        """Whether a socket is attached (requests can be sent)."""
        return self._socket is not None

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def attach(self, socket: Sender) -> None:
        """Send requests on `socket` from now on (a new connection)."""
        self._socket = socket
        self._replaced = False

    def detach(self) -> None:
        """The socket is gone: fail every request in flight (Asterisk may have run it)."""
        self._socket = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionDownError(
                        "the ARI WebSocket closed with the request in flight; "
                        "Asterisk may or may not have run it"
                    )
                )

    def offer(self, data: str | bytes) -> bool:
        """Take `data` if it is a REST answer (resolving its request); False for an event.

        Called by the socket's reader for every frame: it never waits.
        """
        if (_MARK not in data) if isinstance(data, str) else (_MARK_BYTES not in data):
            if (_REPLACED in data) if isinstance(data, str) else (_REPLACED_BYTES in data):
                self._on_replaced(data)
            return False
        try:
            response = _decode_response(data)
        except msgspec.DecodeError:
            return False  # not a JSON object of ours: let the event decoder say so
        if response.type != "RESTResponse":
            return False
        future = self._pending.pop(response.request_id, None)
        if future is None or future.done():
            self.late += 1
            logger.debug("dropped a REST answer nobody waits for: %r", response.request_id)
            return True
        raw = bytes(response.message_body)
        try:
            body = _decode_text(raw).encode() if raw[:1] == b'"' else raw
        except msgspec.DecodeError:
            body = raw
        status = response.status_code
        if status >= 300 or status < 100:
            future.set_exception(
                ari_error(status, response.reason_phrase, body, username=self.http.username)
            )
        else:
            future.set_result(HttpResponse(status, body))
        return True

    def _on_replaced(self, data: str | bytes) -> None:
        """Another socket registered an application of ours: Asterisk leaves requests on this
        one unanswered once that socket closes, so they go over HTTP until the next
        connection (the events go to the other socket either way)."""
        try:
            if _decode_type(data).type != "ApplicationReplaced":
                return
        except msgspec.DecodeError:
            return
        if not self._replaced and self.enabled:
            logger.warning(
                "another client registered this connection's application: requests go over "
                "HTTP until the next connection"
            )
        self._replaced = True

    async def request(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        body: object = None,
        *,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Call one ARI operation over the WebSocket and return the 2xx answer.

        Raises:
            AriError: Asterisk answered with a non-2xx status (subclass by status).
            RequestTimeout: no answer within `timeout` (default: the transport's).
            ConnectionDownError: no socket, or it closed before the answer came.
            ValueError: a path or query parameter is missing, unknown or of the wrong type.
        """
        if not self.enabled or self._replaced:
            return await self.http.request(op, path, query, body, timeout=timeout)
        if op.name == "applications.filter" and body is not None:
            body = _let_answers_through(body)
        uri = request_target(op, path or {}, query or {})[1:]  # Asterisk wants no leading /
        limit = self.timeout if timeout is None else timeout
        ident = str(next(self._ids))
        if body is None:
            frame = _encode(_Request("RESTRequest", ident, op.method, uri))
        else:
            text = msgspec.json.encode(body).decode()
            frame = _encode(
                _Request("RESTRequest", ident, op.method, uri, "application/json", text)
            )
        if len(frame) > MAX_FRAME:
            self.too_large += 1
            return await self.http.request(op, path, query, body, timeout=timeout)
        try:
            with self._deadlines.within(limit):
                if self._free > 0 and not self._waiting:
                    self._free -= 1
                else:
                    await self._wait_for_slot()
                try:
                    socket = self._socket
                    if socket is None:
                        raise ConnectionDownError("the ARI WebSocket is down")
                    future: asyncio.Future[HttpResponse] = (
                        asyncio.get_running_loop().create_future()
                    )
                    self._pending[ident] = future
                    try:
                        await socket.send_str(frame.decode())
                        self.sent += 1
                        response = await future
                    finally:
                        self._pending.pop(ident, None)
                finally:
                    self._give_slot()
        except TimeoutError:
            raise RequestTimeout(f"{op.method} {op.path}: no answer within {limit:g}s") from None
        except ConnectionError as exc:  # aiohttp: the socket is closing
            raise ConnectionDownError(f"the ARI WebSocket is down: {exc}") from None
        if op.name in _APPLICATION_OPS and _MARK_BYTES in response.body:
            return HttpResponse(response.status, _hide_answers(response.body))
        return response

    async def _wait_for_slot(self) -> None:
        """Wait, in order of arrival, for a slot in the pending table (a counter and a queue:
        `asyncio.Semaphore` costs two generator calls per request in Python 3.11)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.queued += 1
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_slot()  # handed a slot as it gave up: pass it on
            raise
        finally:
            self.queued -= 1

    def _give_slot(self) -> None:
        """Hand a freed slot to the first request still waiting, else free it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def stream(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        *,
        chunk_size: int = 64 * 1024,
        timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Binary bodies go over HTTP: Asterisk answers 406 to them on the socket."""
        return self.http.stream(op, path, chunk_size=chunk_size, timeout=timeout)

    async def close(self) -> None:
        """Fail what is in flight and stop the deadline sweeper (the HTTP side is the owner's)."""
        self.detach()
        self._deadlines.close()


# The answers travel as events of the socket's applications, so an application's event filter
# applies to them: an allow-list without them would leave every request unanswered (the filter's
# own request first). A filter set over the socket lets them through, and the application's
# filter is shown without them.


def _let_answers_through(body: object) -> object:
    """An `applications.filter` body whose allow-list (when it has one) includes the answers
    and whose deny-list does not."""
    data = msgspec.json.decode(msgspec.json.encode(body))
    if not isinstance(data, dict):
        return body
    allowed = data.get("allowed") or []
    if allowed and _ANSWERS not in allowed:
        data["allowed"] = [*allowed, _ANSWERS]
    if data.get("disallowed"):
        data["disallowed"] = [d for d in data["disallowed"] if d != _ANSWERS]
    return data


def _hide_answers(body: bytes) -> bytes:
    """An Application (or a list of them) without the answers in its filter lists."""
    data = msgspec.json.decode(body)
    for app in data if isinstance(data, list) else [data]:
        if isinstance(app, dict):
            for member in ("events_allowed", "events_disallowed"):
                if isinstance(app.get(member), list):
                    app[member] = [e for e in app[member] if e != _ANSWERS]
    return msgspec.json.encode(data)
