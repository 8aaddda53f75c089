"""Handles: references to ARI entities that carry a `Key` and do no I/O until awaited.

A handle can exist before its entity does (IDs are chosen client-side), which is what lets an
application subscribe to an entity's events before creating it. `Staged` packages that pattern.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from ..events import Overflow
from ..protocol import Key, KindName
from ..spec.models import Message

if TYPE_CHECKING:
    from ._backend import Result
    from ._client import Client, PendingSubscription
    from ._handlers import EventCallback, EventHandler

__all__ = ["Handle", "Namespace", "Staged"]

M = TypeVar("M")
H = TypeVar("H", bound="Handle")


class Handle:
    """A reference to one ARI entity: its `key`, and the client that acts on it."""

    __slots__ = ("_client", "key")
    kind: ClassVar[str] = ""
    #: The request that routes this entity's events to a dialog (`ChannelSubscribe`, ...).
    follow_kind: ClassVar[KindName | None] = None

    def __init__(self, client: Client, key: Key) -> None:
        self._client = client
        self.key = key

    @property
    def id(self) -> str:
        """The entity's ID."""
        return self.key.id

    @property
    def node(self) -> str:
        """The Asterisk entity ID the entity lives on (`""` when not known yet)."""
        return self.key.node

    def subscribe(
        self,
        *types: str,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> PendingSubscription:
        """Subscribe to this entity's events (all types when none are named).

        Use as `async with handle.subscribe("ChannelDestroyed") as events:` or
        `events = await handle.subscribe(...)`; `maxsize`, `overflow` and `where` are as in
        `Client.subscribe`. In a dialog-scoped client the entity is first bound to the dialog,
        so its events reach it.
        """
        before = None
        follow = self.follow_kind
        if self.key.dialog and follow:

            async def before() -> object:
                return await self._request(follow)

        return self._client.subscribe(
            *types, key=self.key, maxsize=maxsize, overflow=overflow, where=where, before=before
        )

    @overload
    def on(
        self,
        types: str | Sequence[str],
        handler: EventCallback,
        /,
        *,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> EventHandler: ...

    @overload
    def on(
        self,
        types: str | Sequence[str],
        /,
        *,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> Callable[[EventCallback], EventHandler]: ...

    def on(
        self,
        types: str | Sequence[str],
        handler: EventCallback | None = None,
        /,
        *,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> EventHandler | Callable[[EventCallback], EventHandler]:
        """Call `handler(event)` for each event of this entity (of `types`; `[]`: all), as
        `Client.on` does, over `subscribe` (so a dialog-scoped client binds the entity first).

        ```python
        await channel.on("ChannelDtmfReceived", on_digit)
        ```
        """
        names = (types,) if isinstance(types, str) else tuple(types)
        pending = self.subscribe(*names, maxsize=maxsize, overflow=overflow, where=where)
        return self._client._register(names, pending, handler)

    async def once(
        self,
        *types: str,
        timeout: float | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """Wait for the next event of this entity (of `types`, if given).

        Raises:
            TimeoutError: none arrived within `timeout`.
        """
        return await self._client.once(*types, key=self.key, timeout=timeout, where=where)

    async def _request(
        self, kind: KindName, payload: Any = None, timeout: float | None = None
    ) -> Result:
        return await self._client.request(kind, self.key, payload, timeout=timeout)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.key == self.key

    def __hash__(self) -> int:
        return hash((type(self), self.key))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


class Staged(Generic[H]):
    """An operation whose handle exists but which has not run yet: stage, subscribe, execute.

    ```python
    staged = await client.channels.stage_originate("Local/100@default", app="demo")
    async with staged.subscribe("StasisStart") as events:
        channel = await staged.execute()
        await events.next(timeout=5)
    ```
    Through the proxy, staging also picks the Asterisk node, so the subscription is made on the
    node that will run the operation.
    """

    __slots__ = ("_executed", "_run", "handle")

    def __init__(self, handle: H, run: Callable[[H], Awaitable[H]]) -> None:
        self.handle = handle
        self._run = run
        self._executed = False

    @property
    def key(self) -> Key:
        """The key the operation will create."""
        return self.handle.key

    @property
    def id(self) -> str:
        """The ID the operation will create."""
        return self.handle.key.id

    def subscribe(
        self,
        *types: str,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> PendingSubscription:
        """Subscribe to the future entity's events; see `Handle.subscribe`."""
        return self.handle.subscribe(*types, maxsize=maxsize, overflow=overflow, where=where)

    async def execute(self) -> H:
        """Run the staged operation and return the handle.

        Raises:
            RuntimeError: it was already executed.
            AriError, TransportError, RequestTimeout: as the operation itself.
        """
        if self._executed:
            raise RuntimeError("a staged operation runs once")
        self._executed = True
        return await self._run(self.handle)

    def __repr__(self) -> str:
        return f"<Staged {self.handle!r}{' executed' if self._executed else ''}>"


class Namespace:
    """Base of the namespaces (`client.channels`, ...): finding and listing entities as handles."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    async def _find(self, kind: KindName, cls: type[H], ident: str) -> H:
        """A Get-type round trip for `ident`; the handle carries the key the server stamped."""
        key = self._client.key(cls.kind, ident)
        result = await self._client.request(kind, key)
        return cls(self._client, self._client.adopt(result.key or key))

    async def _all(self, kind: KindName, cls: type[H], payload: Any = None) -> list[H]:
        """A list round trip (gathered from every proxy through the bus)."""
        result = await self._client.request(kind, self._client.key("", ""), payload)
        return [cls(self._client, self._client.adopt(k)) for k in result.keys]
