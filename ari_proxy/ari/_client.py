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
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from .._exceptions import ConnectError, NoProxyError, NotFoundError, ProtocolError
from .._redact import redact_url
from ..api import Client, Connecting
from ..events import EventHub, Subscription, decode_event, gap_since, route_event
from ..protocol import DialogRouter, Key, KindName, Result
from ..spec import OPERATIONS, decode_model
from ..spec.models import AsteriskInfo
from ._executor import Executor
from ._http import HttpTransport
from ._websocket import ConnectionState, EventStream

__all__ = ["AriClient", "Connecting", "NativeBackend", "connect"]

logger = logging.getLogger(__name__)


class NativeBackend:
    """Runs requests over HTTP and delivers the WebSocket's events to the hub.

    Dialogs work as through a proxy: requests whose key carries a dialog bind it to their
    entities, and each event is delivered once more for every dialog bound to its entities.
    """

    def __init__(
        self,
        http: HttpTransport,
        ws_url: str,
        applications: Sequence[str],
        *,
        subscribe_all: bool = False,
        heartbeat: float = 10.0,
    ) -> None:
        if not applications:
            raise ValueError("at least one application is needed")
        self.http = http
        self.applications = tuple(applications)
        self._hub = EventHub()
        self.node_id = ""
        self.info: AsteriskInfo | None = None
        self.dialogs = DialogRouter()
        self.bad_frames = 0
        self.executor = Executor(http, self.applications[0], lambda: self.node_id)
        self.stream = EventStream(
            http,
            ws_url,
            self.applications,
            on_frame=self._on_frame,
            on_connected=self._on_connected,
            subscribe_all=subscribe_all,
            heartbeat=heartbeat,
        )

    @property
    def application(self) -> str:
        return self.applications[0]

    @property
    def node(self) -> str:
        return self.node_id

    @property
    def hub(self) -> EventHub:
        return self._hub

    async def refresh_info(self) -> AsteriskInfo:
        """Read `/asterisk/info` and remember the entity ID."""
        response = await self.http.request(OPERATIONS["asterisk.getInfo"])
        info = decode_model(response.body, AsteriskInfo)
        self.info = info
        self.node_id = info.system.entity_id if info.system is not None else ""
        return info

    async def _on_connected(self, lost_at: float | None) -> None:
        previous = self.node_id
        await self.refresh_info()
        if lost_at is None:
            return
        if previous != self.node_id:
            logger.warning("Asterisk entity ID changed from %s to %s", previous, self.node_id)
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
        """Check the credentials with one REST call, then open the event stream."""
        await self.refresh_info()
        await self.stream.start(timeout)

    async def close(self) -> None:
        await self.stream.close()
        self._hub.close()
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
) -> Connecting[AriClient]:
    """Connect to one Asterisk's ARI.

    Args:
        url: ARI base URL (default `$ARI_HTTP_URL`, else `http://localhost:8088/ari`).
        username, password: ARI credentials (default `$ARI_USERNAME`, `$ARI_PASSWORD`).
        applications: one or more applications, as a list or comma-separated (default
            `$ARI_APPLICATION`). The first is the client's `application`.
        ws_url: events WebSocket URL (default: derived from `url`).
        subscribe_all: receive every event in the system, not only the applications'.
        timeout: default seconds per request.
        connect_timeout: seconds to wait for the first connection.
        pool_size: most concurrent HTTP connections (Asterisk allows 100 sessions by default).
        heartbeat: seconds between WebSocket pings (a dead connection is noticed after ~1.5x).

    Returns:
        A `Connecting`: `await` it for an `AriClient`, or `async with connect(...) as client`.

    Raises (when awaited):
        ConnectError: Asterisk is unreachable or refused the credentials.
    """
    base = _base_url(url or os.environ.get("ARI_HTTP_URL") or "http://localhost:8088/ari")
    user = username if username is not None else os.environ.get("ARI_USERNAME", "")
    secret = password if password is not None else os.environ.get("ARI_PASSWORD", "")
    apps = applications if applications is not None else os.environ.get("ARI_APPLICATION", "")
    names = [a for a in (apps.split(",") if isinstance(apps, str) else apps) if a]
    if not names:
        raise ValueError("connect() needs at least one application (or $ARI_APPLICATION)")
    events = ws_url or (
        base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/events"
    )

    async def start() -> AriClient:
        http = HttpTransport(base, user, secret, pool_size=pool_size, timeout=timeout)
        backend = NativeBackend(
            http, events, names, subscribe_all=subscribe_all, heartbeat=heartbeat
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
