"""The outbound WebSocket: Asterisk dials us (Asterisk 20.15, 21.10, 22.5 and later).

`ari.conf` names a `type=outbound_websocket` connection serving some applications, and
`websocket_client.conf` says where it dials (`uri`), with which credentials, and that it is
`persistent`. Asterisk then keeps the applications registered while the socket is down and
queues their events, sending them when it is back: a restart of whoever listens loses nothing
(docs/transports.md). Requests go back on the same socket (REST over WebSocket) or over HTTP.

One connection at a time: a new one (Asterisk redialling after it gave up on the old one)
replaces the old. The credentials are checked in constant time before the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp

from .._backoff import Backoff
from .._exceptions import ConnectError, ServiceUnavailableError
from ._websocket import ConnectionState, EventSocket
from ._websocket_rest import WebSocketRest

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["OutboundEventStream"]

logger = logging.getLogger(__name__)


class OutboundEventStream(EventSocket):
    """Listens for Asterisk's outbound persistent ARI WebSocket.

    Args:
        host: where to listen (`None`: every interface).
        port: the port to listen on (0: a free one, then in `port`).
        username: the user Asterisk presents (`websocket_client.conf`); anything else is
            refused with 401 before the upgrade.
        password: the password Asterisk presents.
        on_frame: as for `EventStream`.
        on_connected: as for `EventStream`.
        rest: as for `EventStream`.
        heartbeat: as for `EventStream`.
        ssl_context: serve `wss://` with this context.
    """

    keeps_events = True
    speaks_first = True

    def __init__(
        self,
        host: str | None,
        port: int,
        *,
        username: str,
        password: str,
        on_frame: Callable[[str | bytes], None],
        on_connected: Callable[[float | None], Awaitable[None]],
        rest: WebSocketRest | None = None,
        heartbeat: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not username or not password:
            raise ValueError(
                "the outbound WebSocket needs the username and password Asterisk sends"
            )
        super().__init__(
            on_frame=on_frame,
            on_connected=on_connected,
            rest=rest,
            heartbeat=heartbeat,
            backoff=Backoff(),
        )
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.refused = 0
        """Connections refused for their credentials."""
        self._expected = aiohttp.encode_basic_auth(username, password).encode()
        self._runner: web.AppRunner | None = None
        self._ws: web.WebSocketResponse | None = None
        self._turn = asyncio.Lock()
        self._lost_at: float | None = None

    @property
    def address(self) -> str:
        """`host:port` listened on (for messages)."""
        return f"{self.host or '*'}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        """Listen, and wait until Asterisk has connected.

        Raises:
            ConnectError: the address cannot be listened on, or Asterisk did not connect
                within `timeout` (the listener is closed again).
        """
        from aiohttp import web  # only a listening process pays for the server side

        app = web.Application()
        app.router.add_route("GET", "/{path:.*}", self._accept)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConnectError(
                f"cannot listen for Asterisk's outbound WebSocket on {self.address}: "
                f"{exc.strerror or exc}"
            ) from None
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])
        logger.info("waiting for Asterisk's outbound WebSocket", extra={"address": self.address})
        try:
            await self.wait_connected(timeout)
        except TimeoutError:
            await self.close()
            raise ConnectError(
                f"Asterisk did not connect to {self.address} within {timeout:g}s: check "
                "ari.conf (type=outbound_websocket) and websocket_client.conf (uri, username, "
                "password)"
            ) from None

    def _authorized(self, header: str) -> bool:
        return hmac.compare_digest(header.encode(), self._expected)

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        if not self._authorized(request.headers.get("Authorization", "")):
            self.refused += 1
            logger.warning(
                "refused an outbound ARI WebSocket: wrong credentials",
                extra={"peer": request.remote},
            )
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="ari"'})
        ws = web.WebSocketResponse(protocols=("ari",), heartbeat=self.heartbeat, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="a WebSocket upgrade is expected\n")
        if self._closing:
            return web.Response(status=503)
        previous = self._ws
        if previous is not None:  # Asterisk redialled: it has given up on the old socket
            logger.warning("a new outbound ARI WebSocket replaces the open one")
            await previous.close()
        await ws.prepare(request)
        async with self._turn:
            if self.closing:  # the property: it changed during the awaits
                await ws.close()
                return ws
            self._ws = ws
            logger.info("Asterisk connected its outbound WebSocket", extra={"peer": request.remote})
            try:
                await self._session(ws, self._lost_at)
            except ServiceUnavailableError:  # it dials while booting, and again after
                self.failures += 1
                logger.info("Asterisk dialled before it finished booting; it will dial again")
            except Exception as exc:  # Asterisk redials; say why this one was given up
                self.failures += 1
                logger.warning("outbound ARI WebSocket given up: %s", exc)
            finally:
                self._ws = None
                with contextlib.suppress(Exception):
                    await ws.close()
            self._ended()
        return ws

    def _ended(self) -> None:
        if self._closing or not self.connects:
            return
        if self._lost_at is None or self._connected.is_set():
            self._lost_at = asyncio.get_running_loop().time()
        logger.warning("Asterisk's outbound WebSocket closed; waiting for it to dial again")
        self._set_state(ConnectionState.RECONNECTING)

    async def close(self) -> None:
        """Close the socket and stop listening."""
        self._closing = True
        self._set_state(ConnectionState.CLOSED)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
