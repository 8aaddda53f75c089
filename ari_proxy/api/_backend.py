"""The contract between the shared interface and the two ways of reaching Asterisk.

`Client` (the interface users program against) turns each method into a request kind, a key and
a payload, and hands them to a `Backend`: the native backend runs them against one Asterisk over
HTTP, the proxy backend sends them over the bus. Both return a `Result`
(`ari_proxy.protocol.Result`), so the interface cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

from ..events import EventHub, Subscription
from ..protocol import Key, KindName, Result
from ..spec import HttpMethod

__all__ = ["Backend", "JsonValue", "Result"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
"""A JSON document as Python values: what `Client.request(method, path)` sends and returns."""


class Backend(Protocol):
    """How a client reaches Asterisk: directly (native) or over the bus (proxy)."""

    @property
    def application(self) -> str:
        """The application this client acts for (stamped on keys, used for subscriptions)."""
        ...

    @property
    def node(self) -> str:
        """The Asterisk entity ID when there is exactly one (native), else `""`."""
        ...

    @property
    def hub(self) -> EventHub:
        """Where the backend delivers events."""
        ...

    async def execute(
        self,
        kind: KindName,
        key: Key | None,
        payload: Any = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Result:
        """Run one request kind, retrying `retries` times on a timeout (None: the backend's
        default); raise the package's exceptions on failure."""
        ...

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
        """Call an ARI operation by method and path (`Client.request(method, path)`); the
        proxy backend refuses it (docs/client.md, "The escape hatch")."""
        ...

    def download(
        self, key: Key, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a stored recording's file."""
        ...

    async def retain(self, dialog: str) -> None:
        """Make events of `dialog` (or, for `""`, of the application) reach the hub."""
        ...

    def release(self, dialog: str) -> None:
        """Undo one `retain` (the backend finishes any unsubscribing in the background)."""
        ...

    async def listen(self, *, maxsize: int = 1000) -> Subscription:
        """The application's StasisStart events offered to this instance."""
        ...

    async def take(self, key: Key) -> bool:
        """Make the offered call on `key` (channel, node, dialog) this instance's, binding the
        channel to the key's dialog: False when another instance has it, or it is gone."""
        ...

    async def save_state(self, key: Key, state: bytes) -> None:
        """Keep `state` beside the call on `key` for whoever owns it next (docs/handover.md)."""
        ...

    async def stop_taking(self) -> list[Key]:
        """Take no more calls (the listen subscriptions end); return the keys of the calls
        this instance owns."""
        ...

    async def release_calls(self, keys: list[Key]) -> list[Key]:
        """Hand these calls over to the other instances; return those that will be."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...
