"""The native ARI client: the shared interface, run directly against one Asterisk.

```python
async with ari_proxy.ari.connect("http://127.0.0.1:8088/ari", "user", "secret", "myapp") as ari:
    async with ari.subscribe("StasisStart") as events:
        async for event in events:
            channel = ari.channels.handle(event.channel.id)
            await channel.answer()
```
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from .._exceptions import ConnectError, NoProxyError, NotFoundError, ProtocolError
from .._redact import redact_url
from .._tls import client_context
from ..api import Client, Connecting, JsonValue
from ..events import EventHub, Subscription, decode_event, gap_since, route_event
from ..protocol import DialogRouter, Key, KindName, Result
from ..spec import OPERATIONS, HttpMethod, decode_model
from ..spec.models import AsteriskInfo
from ._executor import Executor
from ._http import HttpTransport, RestTransport
from ._outbound import OutboundEventStream
from ._raw import raw_request
from ._websocket import ConnectionState, EventSocket, EventStream
from ._websocket_rest import WebSocketRest, check_transport, rest_over_websocket

__all__ = ["AriClient", "Connecting", "NativeBackend", "connect", "serve_outbound"]

logger = logging.getLogger(__name__)


class NativeBackend:
    """Runs requests over HTTP (or the events WebSocket) and delivers the WebSocket's events
    to the hub.

    Dialogs work as through a proxy: requests whose key carries a dialog bind it to their
    entities, and each event is delivered once more for every dialog bound to its entities.

    `ws_url` dials Asterisk's events WebSocket; `events` takes a socket opened otherwise (the
    outbound WebSocket Asterisk dials), built by the caller from this backend's `_on_frame`,
    `_on_connected` and `websocket_rest`.
    """

    def __init__(
        self,
        http: HttpTransport,
        ws_url: str,
        applications: Sequence[str],
        *,
        subscribe_all: bool = False,
        heartbeat: float = 10.0,
        transport: str = "auto",
        events: Callable[[NativeBackend], EventSocket] | None = None,
    ) -> None:
        if not applications:
            raise ValueError("at least one application is needed")
        self.http = http
        self.transport = check_transport(transport)
        self.websocket_rest = WebSocketRest(http) if transport != "http" else None
        self.rest: RestTransport = self.websocket_rest or http
        self.applications = tuple(applications)
        self._hub = EventHub()
        self.node_id = ""
        self.info: AsteriskInfo | None = None
        self.dialogs = DialogRouter()
        self.bad_frames = 0
        self.executor = Executor(self.rest, self.applications[0], lambda: self.node_id)
        self.stream: EventSocket = (
            events(self)
            if events is not None
            else EventStream(
                http,
                ws_url,
                self.applications,
                on_frame=self._on_frame,
                on_connected=self._on_connected,
                rest=self.websocket_rest,
                subscribe_all=subscribe_all,
                heartbeat=heartbeat,
            )
        )
        if self.websocket_rest is not None and transport == "auto":
            # Dialling: decided by Asterisk's version (`refresh_info`). Dialled: Asterisk is
            # recent enough to dial (22.5, 21.10, 20.15), so it takes requests on the socket.
            self.websocket_rest.enabled = not isinstance(self.stream, EventStream)

    @property
    def application(self) -> str:
        return self.applications[0]

    @property
    def node(self) -> str:
        return self.node_id

    @property
    def hub(self) -> EventHub:
        return self._hub

    async def refresh_info(self, via: RestTransport | None = None) -> AsteriskInfo:
        """Read `/asterisk/info` (over `via`, default the REST transport) and remember the
        entity ID; with `transport="auto"`, choose the transport by Asterisk's version."""
        response = await (via or self.rest).request(OPERATIONS["asterisk.getInfo"])
        info = decode_model(response.body, AsteriskInfo)
        if self.transport == "auto" and self.websocket_rest is not None and info.system:
            self.websocket_rest.enabled = rest_over_websocket(info.system.version)
        self.info = info
        self.node_id = info.system.entity_id if info.system is not None else ""
        return info

    async def _on_connected(self, lost_at: float | None) -> None:
        previous = self.node_id
        started = self.info.status.startup_time if self.info and self.info.status else None
        # "auto" on a dialled socket asks over HTTP: the Asterisk behind the URL may have been
        # replaced by one without REST over WebSocket.
        dialled_auto = self.transport == "auto" and isinstance(self.stream, EventStream)
        await self.refresh_info(self.http if dialled_auto else None)
        if lost_at is None:
            return
        if previous != self.node_id:
            logger.warning("Asterisk entity ID changed from %s to %s", previous, self.node_id)
        now = self.info.status.startup_time if self.info and self.info.status else None
        if self.stream.keeps_events and previous == self.node_id and started == now:
            logger.info("ARI events resumed; Asterisk held those of the disconnection")
            return
        gap = gap_since(lost_at, application=self.application, node=self.node_id, source="ari")
        gap.previous_node = previous
        logger.warning("ARI events resumed after %.1fs; events in the gap are lost", gap.duration)
        self._hub.publish(gap)

    def _on_frame(self, data: str | bytes) -> None:
        try:
            event = decode_event(data)
        except ProtocolError as exc:
            self.bad_frames += 1
            logger.warning("ignoring an ARI frame that is not an event: %s", exc)
            return
        self._hub.publish(event)
        for dialog in route_event(self.dialogs, event):
            self._hub.publish(event, dialog)

    def execute(
        self,
        kind: KindName,
        key: Key | None,
        payload: Any = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Coroutine[Any, Any, Result]:
        return self.executor.execute(
            kind, key, payload, timeout=timeout, retries=retries or 0, router=self.dialogs
        )

    def download(
        self, key: Key, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self.executor.stream("RecordingStoredFile", key, timeout=timeout)

    async def raw_request(
        self,
        method: HttpMethod,
        path: str,
        *,
        path_params: Mapping[str, str],
        query: Mapping[str, object],
        body: JsonValue,
        timeout: float | None,
        retries: int | None,
    ) -> JsonValue:
        """Call an ARI operation by method and path (see `ari_proxy.ari._raw`)."""
        return await raw_request(
            self.executor.http,
            method,
            path,
            path_params=path_params,
            query=query,
            body=body,
            timeout=timeout,
            retries=retries or 0,
        )

    async def retain(self, dialog: str) -> None:
        """Nothing to do: every event of the applications arrives on the one WebSocket."""

    def release(self, dialog: str) -> None:
        """Nothing to do (see `retain`)."""

    async def listen(self, *, maxsize: int = 1000) -> Subscription:
        """Every StasisStart of the applications: this client is the only instance."""
        return self._hub.subscribe(["StasisStart"], maxsize=maxsize)

    async def take(self, key: Key) -> bool:
        """Bind the call's channel to the key's dialog (the only instance owns every call);
        False when the channel is already gone."""
        try:
            await self.execute("ChannelSubscribe", key)
        except NotFoundError:
            return False
        return True

    async def save_state(self, key: Key, state: bytes) -> None:
        """Refused: a native client is its calls' only instance, with no server to keep state
        beside them."""
        raise NoProxyError(
            "call state is kept by ari-proxy servers (docs/handover.md); a native client has "
            "no server to keep it"
        )

    async def stop_taking(self) -> list[Key]:
        """Nothing to hand over: a native client is its calls' only instance."""
        return []

    async def release_calls(self, keys: list[Key]) -> list[Key]:
        """Nothing to hand over (see `stop_taking`)."""
        return []

    async def start(self, timeout: float) -> None:
        """Check the credentials with one REST call (when we dial Asterisk), then open the
        event stream."""
        if isinstance(self.stream, EventStream):
            await self.refresh_info(self.http)
        await self.stream.start(timeout)

    async def close(self) -> None:
        await self.stream.close()
        self._hub.close()
        if self.websocket_rest is not None:
            await self.websocket_rest.close()
        await self.http.close()


class AriClient(Client):
    """A client connected directly to one Asterisk (see `ari_proxy.ari.connect`)."""

    _backend: NativeBackend

    @property
    def state(self) -> ConnectionState:
        """The event connection's state."""
        return self._backend.stream.state

    @property
    def info(self) -> AsteriskInfo | None:
        """What `/asterisk/info` said at the last (re)connection."""
        return self._backend.info

    @property
    def application_names(self) -> tuple[str, ...]:
        """Every application this connection registered (the first is `application`)."""
        return self._backend.applications

    def on_state(self, callback: Callable[[ConnectionState], None]) -> None:
        """Call `callback(state)` whenever the event connection changes state."""
        self._backend.stream.on_state(callback)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until events flow (returns at once when they do).

        Raises:
            TimeoutError: not connected within `timeout`.
        """
        await self._backend.stream.wait_connected(timeout)


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    if url.count("/") <= 2:  # "http://host:port": add Asterisk's default prefix
        url += "/ari"
    return url


def _tls_context(
    base: str, events: str, ca_file: str, cert_file: str, key_file: str
) -> ssl.SSLContext | None:
    """The context of the `tls_*` files (None without any: aiohttp verifies with the system's
    CAs), refused when no URL uses TLS: the files would be silently ignored."""
    if not (ca_file or cert_file or key_file):
        return None
    if not (base.startswith("https://") or events.startswith("wss://")):
        raise ValueError(
            f"tls_ca_file, tls_cert_file and tls_key_file need an https:// or wss:// URL, "
            f"not {redact_url(base)!r}"
        )
    if key_file and not cert_file:
        raise ValueError("tls_key_file needs tls_cert_file")
    try:
        return client_context(ca_file, cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS files ({exc})") from None


def connect(
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    applications: str | Sequence[str] | None = None,
    *,
    ws_url: str | None = None,
    subscribe_all: bool = False,
    timeout: float = 10.0,
    connect_timeout: float = 10.0,
    pool_size: int = 32,
    heartbeat: float = 10.0,
    transport: str = "auto",
    tls_ca_file: str = "",
    tls_cert_file: str = "",
    tls_key_file: str = "",
) -> Connecting[AriClient]:
    """Connect to one Asterisk's ARI.

    Args:
        url: ARI base URL (default `$ARI_HTTP_URL`, else `http://localhost:8088/ari`).
        username: ARI user (default `$ARI_USERNAME`).
        password: ARI password (default `$ARI_PASSWORD`).
        applications: one or more applications, as a list or comma-separated (default
            `$ARI_APPLICATION`). The first is the client's `application`.
        ws_url: events WebSocket URL (default: derived from `url`).
        subscribe_all: receive every event in the system, not only the applications'.
        timeout: default seconds per request.
        connect_timeout: seconds to wait for the first connection.
        pool_size: most concurrent HTTP connections (Asterisk allows 100 sessions by default).
        heartbeat: seconds between WebSocket pings (a dead connection is noticed after ~1.5x).
        transport: how requests travel: `"http"` (their own connections), `"websocket"` (on
            the events WebSocket, Asterisk 22.4, 21.9, 20.14 and later; recordings' files
            still over HTTP), or `"auto"`: the WebSocket when Asterisk's version has it, else
            HTTP. See docs/transports.md.
        tls_ca_file: the CA bundle (PEM) that `https://` and `wss://` verify Asterisk's
            certificate with; default: the system's CAs. Verification is never turned off.
        tls_cert_file: a client certificate to present.
        tls_key_file: its key (it may also be in the certificate's file).

    Returns:
        A `Connecting`: `await` it for an `AriClient`, or `async with connect(...) as client`.

    Raises:
        ValueError: no application, an unknown transport, TLS files with no `https://` or
            `wss://` URL, or TLS files that cannot be read.

    Raises (when awaited):
        CertificateError: Asterisk's TLS certificate was not trusted (at once, not retried).
        ConnectError: Asterisk is unreachable or refused the credentials.
    """
    base = _base_url(url or os.environ.get("ARI_HTTP_URL") or "http://localhost:8088/ari")
    user = username if username is not None else os.environ.get("ARI_USERNAME", "")
    secret = password if password is not None else os.environ.get("ARI_PASSWORD", "")
    apps = applications if applications is not None else os.environ.get("ARI_APPLICATION", "")
    names = [a for a in (apps.split(",") if isinstance(apps, str) else apps) if a]
    if not names:
        raise ValueError("connect() needs at least one application (or $ARI_APPLICATION)")
    check_transport(transport)
    events = ws_url or (
        base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/events"
    )
    context = _tls_context(base, events, tls_ca_file, tls_cert_file, tls_key_file)

    async def start() -> AriClient:
        http = HttpTransport(
            base, user, secret, pool_size=pool_size, timeout=timeout, ssl_context=context
        )
        backend = NativeBackend(
            http,
            events,
            names,
            subscribe_all=subscribe_all,
            heartbeat=heartbeat,
            transport=transport,
        )
        try:
            await backend.start(connect_timeout)
        except ConnectError:
            await backend.close()
            raise
        except Exception as exc:
            await backend.close()
            shown = redact_url(base)
            raise ConnectError(f"cannot connect to ARI at {shown}: {exc}") from None
        return AriClient(backend, timeout=timeout)

    return Connecting(start)


def serve_outbound(
    applications: str | Sequence[str],
    *,
    port: int,
    username: str,
    password: str,
    host: str | None = "127.0.0.1",
    url: str | None = None,
    ari_username: str | None = None,
    ari_password: str | None = None,
    transport: str = "auto",
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    connect_timeout: float = 60.0,
    heartbeat: float = 10.0,
) -> Connecting[AriClient]:
    """Wait for Asterisk to dial us: its outbound persistent WebSocket (Asterisk 22.5+).

    `ari.conf` has a `type=outbound_websocket` section serving `applications`, whose
    `websocket_client.conf` connection dials `ws://host:port/...` (any path) with `username`
    and `password`. Asterisk holds the applications' events while no one listens and sends
    them on the next connection, so a restart of this process loses none of them
    (docs/transports.md).

    Args:
        applications: the applications the connection serves (as in `ari.conf` `apps`).
        port: the port to listen on.
        host: where to listen (None: every interface).
        username: the user Asterisk presents (`websocket_client.conf`); checked in constant
            time, anything else refused with 401.
        password: the password Asterisk presents.
        url: ARI over HTTP (default `$ARI_HTTP_URL`), for recordings' files and for requests
            when `transport="http"`; not used otherwise.
        ari_username: the ARI user for `url` (default `$ARI_USERNAME`).
        ari_password: the ARI password for `url` (default `$ARI_PASSWORD`).
        transport: `"websocket"` or `"auto"` (requests on the socket Asterisk dialled) or
            `"http"`.
        ssl_context: serve `wss://` (Asterisk: `tls_enabled = yes`).
        timeout: default seconds per request.
        connect_timeout: seconds to wait for Asterisk's first connection.
        heartbeat: seconds between WebSocket pings.

    Returns:
        A `Connecting`: `await` it for an `AriClient`, or `async with serve_outbound(...)`.

    Raises (when awaited):
        ConnectError: the port cannot be listened on, or Asterisk did not dial in time.
    """
    names = [
        a for a in (applications.split(",") if isinstance(applications, str) else applications) if a
    ]
    if not names:
        raise ValueError("serve_outbound() needs at least one application")
    check_transport(transport)
    base = _base_url(url or os.environ.get("ARI_HTTP_URL") or "http://localhost:8088/ari")
    user = ari_username if ari_username is not None else os.environ.get("ARI_USERNAME", "")
    secret = ari_password if ari_password is not None else os.environ.get("ARI_PASSWORD", "")

    def listen(backend: NativeBackend) -> EventSocket:
        return OutboundEventStream(
            host,
            port,
            username=username,
            password=password,
            on_frame=backend._on_frame,
            on_connected=backend._on_connected,
            rest=backend.websocket_rest,
            heartbeat=heartbeat,
            ssl_context=ssl_context,
        )

    async def start() -> AriClient:
        http = HttpTransport(base, user, secret, timeout=timeout)
        backend = NativeBackend(http, "", names, transport=transport, events=listen)
        try:
            await backend.start(connect_timeout)
        except BaseException:
            await backend.close()
            raise
        return AriClient(backend, timeout=timeout)

    return Connecting(start)
