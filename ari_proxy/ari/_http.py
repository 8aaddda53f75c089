"""The REST half of ARI: one keep-alive aiohttp session, a bounded pool, a timeout per request.

Requests are described by a generated `Operation` and plain parameter values; every path segment
and query value is percent-encoded here (the URL is handed to aiohttp already encoded, so nothing
re-quotes or normalises it), and errors become our exception tree in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
import yarl

from .._exceptions import (
    CertificateError,
    ConnectError,
    RequestTimeout,
    TransportError,
    certificate_refusal,
    error_for_status,
)
from .._redact import redact_url
from ..spec import OPERATIONS, Operation, build_path, build_query

__all__ = [
    "HttpResponse",
    "HttpTransport",
    "RestTransport",
    "ari_error",
    "credentials_rejected",
    "request_target",
    "untrusted_certificate",
]

logger = logging.getLogger(__name__)

_JSON_HEADERS = {"Content-Type": "application/json"}
# Operations that cannot go without a query string (a required query parameter).
_NEEDS_QUERY = frozenset(op.name for op in OPERATIONS.values() if any(p.required for p in op.query))
_URL_CACHE_SIZE = 4096
_message_decoder = msgspec.json.Decoder(dict[str, Any])


class Deadlines:
    """Per-request timeouts without a timer per request.

    `asyncio.timeout()` schedules and cancels a loop timer for every request; under load that
    alone costs about a tenth of the client's CPU per request. Here one sweeper task wakes every
    `resolution` seconds and cancels the requests past their deadline, so a request pays only a
    dict insert and delete; a timeout fires at most `resolution` late.
    """

    def __init__(self, resolution: float = 0.05) -> None:
        self.resolution = resolution
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def within(self, seconds: float) -> _Within:
        """Bound the current task's work to `seconds`; raise `TimeoutError` past it."""
        return _Within(self, seconds)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._due:
            await asyncio.sleep(self.resolution)
            now = loop.time()
            for task, deadline in list(self._due.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()


class _Within:
    """One request's deadline (a plain class: cheaper than a generator context manager)."""

    __slots__ = ("_deadlines", "_seconds", "_task")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        task = self._task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task
            return
        deadlines = self._deadlines
        loop = task.get_loop()
        deadlines._due[task] = loop.time() + self._seconds
        sweeper = deadlines._sweeper
        if sweeper is None or sweeper.done():
            deadlines._sweeper = loop.create_task(deadlines._sweep(), name="ari-http-deadlines")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        task = self._task
        if task is None:  # pragma: no cover
            return
        deadlines = self._deadlines
        deadlines._due.pop(task, None)
        if task in deadlines._expired:
            deadlines._expired.discard(task)
            if kind is not None and issubclass(kind, asyncio.CancelledError):
                task.uncancel()
                raise TimeoutError from None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful (2xx) ARI response: status and body bytes (`b""` for 204)."""

    status: int
    body: bytes


class RestTransport(Protocol):
    """What the executor needs of a REST transport: HTTP (`HttpTransport`) or the events
    WebSocket (`WebSocketRest`)."""

    async def request(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        body: object = None,
        *,
        timeout: float | None = None,
    ) -> HttpResponse: ...

    def stream(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        *,
        chunk_size: int = 64 * 1024,
        timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]: ...


def request_target(op: Operation, path: Mapping[str, str], query: Mapping[str, object]) -> str:
    """The encoded path and query of one operation call, relative to the ARI base
    (`/channels/a%2Fb?variable=X`); HTTP and the WebSocket send exactly this."""
    if not path and not query and not op.path_params and op.name not in _NEEDS_QUERY:
        return op.path  # nothing to fill in or check (`/asterisk/info`)
    text = build_path(op, path)
    pairs = build_query(op, query)
    if pairs:
        text += "?" + urlencode(pairs, quote_via=quote, safe="")
    return text


def credentials_rejected(username: str) -> str:
    """What a 401 from Asterisk means, said plainly (REST and the events WebSocket alike)."""
    return f"ARI rejected the credentials (401): check the ARI user ({username!r}) and password"


def untrusted_certificate(shown_url: str, exc: BaseException) -> CertificateError | None:
    """The `CertificateError` for a failure that says Asterisk's TLS certificate was not
    trusted, or None for any other failure. `shown_url` is already redacted."""
    why = certificate_refusal(exc)
    if not why:
        return None
    return CertificateError(
        f"Asterisk's TLS certificate was not trusted (ARI at {shown_url}): {why}; give the CA "
        "that signed it (tls_ca_file; the server's ari.tls_ca_file)"
    )


def closed_unanswered(shown_url: str, exc: BaseException) -> str:
    """A hint for a plain `http://` or `ws://` URL whose peer hung up without a word, which is
    what a TLS port does with a request in the clear; "" for any other failure."""
    if isinstance(exc, aiohttp.ServerDisconnectedError) and shown_url.startswith(("http:", "ws:")):
        return (
            "; the server closed the connection without answering: if this port serves TLS, "
            "use an https:// URL"
        )
    return ""


def ari_error(status: int, reason: str, body: bytes, *, username: str | None = None) -> Exception:
    """Translate a non-2xx ARI answer into an `AriError` subclass carrying Asterisk's message.

    A 401 says that the credentials were refused (naming `username` when given), rather
    than Asterisk's bare `401 Unauthorized: Authentication required`.
    """
    message = ""
    if body:
        try:
            message = str(_message_decoder.decode(body).get("message", ""))
        except (msgspec.DecodeError, AttributeError):
            message = body[:200].decode(errors="replace")
    if status == 401:
        text = (
            credentials_rejected(username)
            if username is not None
            else "ARI rejected the credentials (401)"
        )
        # The text replaces Asterisk's message, so `str()` does not add it back.
        return error_for_status(status, text, reason=reason)
    else:
        text = f"{status} {reason}" + (f": {message}" if message else "")
    return error_for_status(status, text, reason=reason, message=message)


class HttpTransport:
    """Sends ARI REST requests over one aiohttp session.

    Args:
        base_url: ARI base, e.g. `http://127.0.0.1:8088/ari` (no trailing slash needed).
        username: ARI user; sent as HTTP Basic auth.
        password: ARI password; sent as HTTP Basic auth, never logged.
        pool_size: most connections open at once. Asterisk's `http.conf` `sessionlimit`
            defaults to 100 and resets connections above it; keep this well below.
        timeout: seconds a request may take before `RequestTimeout`.
        ssl_context: how `https://` (and the events socket's `wss://`) verify Asterisk
            (`ari_proxy._tls.client_context`); None: against the system's CAs.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        pool_size: int = 32,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._shown_url = redact_url(self.base_url)  # for messages: never a password
        self.timeout = timeout
        self.username = username
        self._auth = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._pool_size = pool_size
        # True: aiohttp's own verifying context (the system's CAs); never False (unverified).
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None
        self._deadlines = Deadlines()
        self._urls: dict[tuple[str, ...], yarl.URL] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=self._pool_size,
                keepalive_timeout=30,
                ssl=self._ssl,
            )
            # No session-wide timeout: each request is bounded by its own (one timer, not two).
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._auth,
                raise_for_status=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout),
            )
        return self._session

    @property
    def auth_headers(self) -> Mapping[str, str]:
        """Headers that authenticate a request (for the WebSocket upgrade)."""
        return self._auth

    def url(self, op: Operation, path: Mapping[str, str], query: Mapping[str, object]) -> yarl.URL:
        """The fully encoded URL of one operation call."""
        if op.name not in _NEEDS_QUERY and all(value is None for value in query.values()):
            # Reads repeat on the same entities (the same channel's data, over and over):
            # remember their URLs rather than build and parse them each time.
            cache_key = (op.name, *path.values())
            url = self._urls.get(cache_key)
            if url is None:
                if len(self._urls) >= _URL_CACHE_SIZE:
                    self._urls.clear()
                url = self._urls[cache_key] = yarl.URL(
                    self.base_url + build_path(op, path), encoded=True
                )
            return url
        return yarl.URL(self.base_url + request_target(op, path, query), encoded=True)

    async def request(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        body: object = None,
        *,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Call one ARI operation and return the 2xx answer.

        Raises:
            AriError: Asterisk answered with a non-2xx status (subclass by status).
            RequestTimeout: no answer within `timeout` (default: the transport's).
            ConnectError, TransportError: Asterisk could not be reached or the link broke.
            ValueError: a path or query parameter is missing, unknown or of the wrong type.
        """
        url = self.url(op, path or {}, query or {})
        data = None if body is None else msgspec.json.encode(body)
        limit = self.timeout if timeout is None else timeout
        try:
            with self._deadlines.within(limit):
                async with self.session.request(
                    op.method,
                    url,
                    data=data,
                    headers=_JSON_HEADERS if data is not None else None,
                ) as resp:
                    payload = await resp.read()
                    if resp.status >= 300:
                        raise ari_error(
                            resp.status, resp.reason or "", payload, username=self.username
                        )
                    return HttpResponse(resp.status, payload)
        except TimeoutError:
            raise RequestTimeout(f"{op.method} {op.path}: no answer within {limit:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            refused = untrusted_certificate(self._shown_url, exc)
            if refused is not None:
                raise refused from None
            raise ConnectError(
                f"cannot connect to Asterisk at {self._shown_url}: {exc.os_error}"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"{op.method} {op.path}: {type(exc).__name__}: {exc}"
                + closed_unanswered(self._shown_url, exc)
            ) from None

    @contextlib.asynccontextmanager
    async def stream(
        self,
        op: Operation,
        path: Mapping[str, str] | None = None,
        *,
        chunk_size: int = 64 * 1024,
        timeout: float | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a binary response (such as a stored recording's file) as chunks.

        The timeout bounds the time to the response headers; reading the body is not limited,
        so a large file can take as long as it needs.
        """
        url = self.url(op, path or {}, {})
        limit = self.timeout if timeout is None else timeout
        try:
            with self._deadlines.within(limit):
                resp = await self.session.request(op.method, url)
        except TimeoutError:
            raise RequestTimeout(f"{op.method} {op.path}: no answer within {limit:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            refused = untrusted_certificate(self._shown_url, exc)
            if refused is not None:
                raise refused from None
            raise ConnectError(
                f"cannot connect to Asterisk at {self._shown_url}: {exc.os_error}"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"{op.method} {op.path}: {type(exc).__name__}: {exc}"
                + closed_unanswered(self._shown_url, exc)
            ) from None
        try:
            if resp.status >= 300:
                raise ari_error(
                    resp.status, resp.reason or "", await resp.read(), username=self.username
                )
            yield resp.content.iter_chunked(chunk_size)
        finally:
            resp.release()

    async def close(self) -> None:
        """Close the session and its connections."""
        self._deadlines.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
