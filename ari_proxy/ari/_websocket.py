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
from urllib.parse import quote, urlencode

import aiohttp
import yarl

from .._backoff import Backoff, worth_logging
from .._exceptions import AriProxyError, ConnectError
from .._redact import redact_url
from ._http import HttpTransport, credentials_rejected

__all__ = ["ConnectionState", "EventStream"]

logger = logging.getLogger(__name__)


class ConnectionState(enum.Enum):
    """Where the ARI event connection is."""

    CONNECTING = "connecting"
    """First connection in progress."""
    CONNECTED = "connected"
    """Events are flowing."""
    RECONNECTING = "reconnecting"
    """The connection was lost; retrying with backoff. Events in the gap are lost."""
    CLOSED = "closed"
    """Closed by its owner."""


class EventStream:
    """Holds the ARI WebSocket for a set of applications.

    Args:
        http: the REST transport (its session and credentials are reused).
        ws_url: e.g. `ws://127.0.0.1:8088/ari/events`.
        applications: applications to register (Asterisk creates them on connect).
        on_frame: called with each text frame; must not block.
        on_connected: awaited after each (re)connection, before frames are read, with the loop
            time the previous connection was lost (None on the first connection).
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
        subscribe_all: bool = False,
        heartbeat: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        query = {"app": ",".join(applications)}
        if subscribe_all:
            query["subscribeAll"] = "true"
        self.url = yarl.URL(f"{ws_url}?{urlencode(query, quote_via=quote, safe=',')}", encoded=True)
        self.http = http
        self.heartbeat = heartbeat
        self.backoff = backoff or Backoff()
        self.state = ConnectionState.CONNECTING
        self.connects = 0
        self.failures = 0
        """Failed connection attempts since the last success (the `attempt` of the logs)."""
        self.frames = 0
        self._on_frame = on_frame
        self._on_connected = on_connected
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._first_error: str | None = None
        self._shown_url = redact_url(ws_url)
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

    async def start(self, timeout: float = 10.0) -> None:
        """Start reading and wait for the first connection.

        Raises:
            ConnectError: not connected within `timeout` (the loop is stopped again).
        """
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ari-events")
        try:
            await self.wait_connected(timeout)
        except TimeoutError:
            error = self._first_error
            await self.close()
            detail = f": {error}" if error else ""
            raise ConnectError(
                f"ARI events WebSocket not connected within {timeout:g}s{detail}"
            ) from None

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until events flow.

        Raises:
            TimeoutError: not connected within `timeout`.
        """
        async with asyncio.timeout(timeout):
            await self._connected.wait()

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
                    await self._on_connected(lost_at)
                    self.connects += 1
                    self.failures = 0
                    self.backoff.reset()
                    self._set_state(ConnectionState.CONNECTED)
                    await self._read(ws)
                if not self._closing:
                    logger.warning("ARI events WebSocket closed by Asterisk; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure means: try again later
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
        return f"{type(exc).__name__}: {exc}"

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        on_frame = self._on_frame
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT or message.type is aiohttp.WSMsgType.BINARY:
                self.frames += 1
                try:
                    on_frame(message.data)
                except Exception:  # a bad frame must never stop the reader
                    logger.exception("ARI event handler failed")
            elif message.type is aiohttp.WSMsgType.ERROR:
                logger.warning("ARI events WebSocket error: %s", ws.exception())
                return

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
