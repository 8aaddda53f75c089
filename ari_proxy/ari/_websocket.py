"""The events half of ARI: one WebSocket, read without ever waiting on anyone, reconnected forever.

The reader hands every frame to a synchronous callback that must not block (the client decodes
and queues; the server queues for publication). Asterisk drops a reader that stalls, so the loop
does nothing else. Heartbeats (WebSocket pings) detect a half-open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import aiohttp
import yarl

from .._backoff import Backoff, worth_logging
from .._exceptions import AriProxyError, CertificateError, ConnectError
from .._redact import redact_url
from ._http import HttpTransport, closed_unanswered, credentials_rejected, untrusted_certificate
from ._websocket_rest import WebSocketRest

__all__ = ["ConnectionState", "EventSocket", "EventStream"]

if TYPE_CHECKING:  # aiohttp.web is imported only where a server listens
    from aiohttp.web import WebSocketResponse

    # aiohttp's client and server sockets alike: send, iterate, say why they ended.
    _Socket = aiohttp.ClientWebSocketResponse | WebSocketResponse

logger = logging.getLogger(__name__)

_FIRST_FRAME = 2.0
"""Seconds to wait for Asterisk's first frame before sending anyway (see `speaks_first`)."""


class ConnectionState(enum.Enum):
    """Where the ARI event connection is."""

    CONNECTING = "connecting"
    """First connection in progress."""
    CONNECTED = "connected"
    """Events are flowing."""
    RECONNECTING = "reconnecting"
    """The connection was lost; retrying with backoff (or waiting for Asterisk to dial again).
    Events in the gap are lost, unless Asterisk holds them (the outbound persistent socket)."""
    CLOSED = "closed"
    """Closed by its owner."""


class EventSocket:
    """What an ARI events socket is, whoever opened it: the connection state, and one
    connected socket's session (`_session`), shared by the stream that dials Asterisk
    (`EventStream`) and the one Asterisk dials (`OutboundEventStream`).

    During a session the reader runs from the start, so REST answers on the socket reach
    `rest` while `on_connected` still runs; events read meanwhile are held (up to
    `hold_limit`, the excess dropped and counted in `held_dropped`) and handed on, in order,
    once it returns.
    """

    keeps_events = False
    """Whether Asterisk holds the events of a disconnection for the next connection (the
    outbound persistent WebSocket does); when False a reconnection is a gap."""

    speaks_first = False
    """Whether requests wait for Asterisk's first frame. On the socket Asterisk dials, a frame
    sent before Asterisk has read our answer to its upgrade stays unread until more data
    comes (seen on 22.10: a request answered only when the next one was sent); Asterisk's
    first frame (`ApplicationRegistered`) says that it has read it."""

    def __init__(
        self,
        *,
        on_frame: Callable[[str | bytes], None],
        on_connected: Callable[[float | None], Awaitable[None]],
        rest: WebSocketRest | None = None,
        heartbeat: float = 10.0,
        backoff: Backoff | None = None,
        hold_limit: int = 100_000,
    ) -> None:
        self.heartbeat = heartbeat
        self.backoff = backoff or Backoff()
        self.rest = rest
        self.state = ConnectionState.CONNECTING
        self.connects = 0
        self.failures = 0
        """Failed connection attempts since the last success (the `attempt` of the logs)."""
        self.frames = 0
        self.hold_limit = hold_limit
        self.held_dropped = 0
        self._on_frame = on_frame
        self._on_connected = on_connected
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._connected = asyncio.Event()
        self._held: list[str | bytes] | None = None
        self._spoke = asyncio.Event()
        self._closing = False

    @property
    def closing(self) -> bool:
        """Whether `close()` was called (read through a property: it changes across awaits)."""
        return self._closing

    def on_state(self, callback: Callable[[ConnectionState], None]) -> None:
        """Call `callback` with each new state."""
        self._listeners.append(callback)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self.state or (self._closing and state is not ConnectionState.CLOSED):
            return
        self.state = state
        if state is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        for callback in list(self._listeners):
            try:
                callback(state)
            except Exception:
                logger.exception("connection state callback failed")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until events flow.

        Raises:
            TimeoutError: not connected within `timeout`.
        """
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def start(self, timeout: float = 10.0) -> None:
        """Wait for the first connection (dialled or accepted).

        Raises:
            ConnectError: not connected within `timeout`.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Stop, and close the socket."""
        raise NotImplementedError

    async def _session(self, ws: _Socket, lost_at: float | None) -> None:
        """Run one connected socket until it ends.

        Raises:
            Exception: what `on_connected` raised (the socket is then given up).
        """
        rest = self.rest
        self._held = []
        self._spoke.clear()
        if rest is not None and not self.speaks_first:
            rest.attach(ws)
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(ws), name="ari-events-reader")
        try:
            if self.speaks_first:
                spoke = asyncio.ensure_future(self._spoke.wait())
                await asyncio.wait(
                    {reader, spoke}, timeout=_FIRST_FRAME, return_when=asyncio.FIRST_COMPLETED
                )
                spoke.cancel()
                if reader.done():
                    return
                if rest is not None:
                    rest.attach(ws)
            connected = asyncio.ensure_future(self._on_connected(lost_at))
            await asyncio.wait({reader, connected}, return_when=asyncio.FIRST_COMPLETED)
            if not connected.done():  # the socket ended first
                connected.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connected
                return
            connected.result()
            self.connects += 1
            self.failures = 0
            self.backoff.reset()
            held, self._held = self._held or [], None
            for data in held:
                self._deliver(data)
            self._set_state(ConnectionState.CONNECTED)
            await reader
        finally:
            self._held = None
            if rest is not None:
                rest.detach()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    def _deliver(self, data: str | bytes) -> None:
        try:
            self._on_frame(data)
        except Exception:  # a bad frame must never stop the reader
            logger.exception("ARI event handler failed")

    async def _read(self, ws: _Socket) -> None:
        rest = self.rest
        spoke = self._spoke
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT or message.type is aiohttp.WSMsgType.BINARY:
                if not spoke.is_set():
                    spoke.set()
                data = message.data
                if rest is not None and rest.offer(data):
                    continue
                self.frames += 1
                held = self._held
                if held is None:
                    self._deliver(data)
                elif len(held) < self.hold_limit:
                    held.append(data)
                else:
                    self.held_dropped += 1
            elif message.type is aiohttp.WSMsgType.ERROR:
                logger.warning("ARI events WebSocket error: %s", ws.exception())
                return


class EventStream(EventSocket):
    """Holds the ARI WebSocket for a set of applications, dialling Asterisk.

    Args:
        http: the REST transport (its session and credentials are reused).
        ws_url: e.g. `ws://127.0.0.1:8088/ari/events`.
        applications: applications to register (Asterisk creates them on connect).
        on_frame: called with each text frame; must not block.
        on_connected: awaited after each (re)connection, before frames are handed on, with
            the loop time the previous connection was lost (None on the first connection).
        rest: REST over this socket (`transport="websocket"`), attached to each connection.
        subscribe_all: ask for every event of the system, not only the applications' own.
        heartbeat: seconds between WebSocket pings; a missing pong closes the connection.
    """

    def __init__(
        self,
        http: HttpTransport,
        ws_url: str,
        applications: Sequence[str],
        *,
        on_frame: Callable[[str | bytes], None],
        on_connected: Callable[[float | None], Awaitable[None]],
        rest: WebSocketRest | None = None,
        subscribe_all: bool = False,
        heartbeat: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            on_frame=on_frame,
            on_connected=on_connected,
            rest=rest,
            heartbeat=heartbeat,
            backoff=backoff,
        )
        query = {"app": ",".join(applications)}
        if subscribe_all:
            query["subscribeAll"] = "true"
        self.url = yarl.URL(f"{ws_url}?{urlencode(query, quote_via=quote, safe=',')}", encoded=True)
        self.http = http
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._first_error: str | None = None
        self._shown_url = redact_url(ws_url)

    async def start(self, timeout: float = 10.0) -> None:
        """Start reading and wait for the first connection.

        Raises:
            CertificateError: Asterisk's TLS certificate was not trusted (at once, not retried).
            ConnectError: not connected within `timeout` (the loop is stopped again).
        """
        loop = asyncio.get_running_loop()
        task = self._task = loop.create_task(self._run(), name="ari-events")
        connected = loop.create_task(self.wait_connected(), name="ari-events-connected")
        try:
            await asyncio.wait(
                {task, connected}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            connected.cancel()
        if self._connected.is_set():
            return
        refused = task.exception() if task.done() and not task.cancelled() else None
        error = self._first_error
        await self.close()
        if isinstance(refused, CertificateError):
            raise refused
        detail = f": {error}" if error else ""
        raise ConnectError(f"ARI events WebSocket not connected within {timeout:g}s{detail}")

    async def _run(self) -> None:
        lost_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self.http.session.ws_connect(
                    self.url,
                    headers=self.http.auth_headers,
                    heartbeat=self.heartbeat,
                    autoping=True,
                    max_msg_size=0,
                ) as ws:
                    self._ws = ws
                    await self._session(ws, lost_at)
                if not self._closing:
                    logger.warning("ARI events WebSocket closed by Asterisk; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure means: try again later
                refused = untrusted_certificate(self._shown_url, exc)
                if refused is not None and not self.connects:
                    # A first connection: the CA setting is wrong, and retrying cannot help
                    # (later, a certificate in rotation may be trusted again: retried).
                    raise refused from None
                failure = self.describe(exc)
                if self._first_error is None:
                    self._first_error = failure
                self.failures += 1
                delay = self.backoff.next()
                if not self._closing and worth_logging(self.failures):
                    logger.warning(
                        "ARI events WebSocket: %s (attempt %d); retrying in %.1fs",
                        failure,
                        self.failures,
                        delay,
                    )
            else:
                delay = self.backoff.next()
            finally:
                self._ws = None
            if self._closing:  # the attribute, not the property: it changed during the awaits
                return
            if self.connects:  # connected before: this is a gap in the events
                if lost_at is None or self._connected.is_set():
                    lost_at = loop.time()
                self._set_state(ConnectionState.RECONNECTING)
            await asyncio.sleep(delay)

    def describe(self, exc: BaseException) -> str:
        """Why a connection attempt failed, in words an operator can act on (never a secret:
        the credentials travel in a header, which no message repeats)."""
        refused = untrusted_certificate(self._shown_url, exc)
        if refused is not None:
            return str(refused)
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            if exc.status == 401:
                return f"{credentials_rejected(self.http.username)} at {self._shown_url}"
            return (
                f"Asterisk refused the WebSocket at {self._shown_url} "
                f"({exc.status} {exc.message}); is ARI enabled (ari.conf, http.conf)?"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"cannot connect to Asterisk at {self._shown_url}: {exc.os_error}"
        if isinstance(exc, AriProxyError):  # ours, worded already (a 401 on /asterisk/info)
            return str(exc)
        return f"{type(exc).__name__}: {exc}{closed_unanswered(self._shown_url, exc)}"

    async def close(self) -> None:
        """Stop reading and close the WebSocket."""
        self._closing = True
        self._set_state(ConnectionState.CLOSED)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
