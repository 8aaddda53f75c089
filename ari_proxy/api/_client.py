"""`Client`: the ARI interface that the native and the proxy client both implement.

Every method ends in `Client.request(kind, key, payload)`, which hands the request to the
backend; the namespaces (`channels`, `bridges`, ...) and handles only build keys and payloads.
A client owns the subscriptions it opens and the child clients it makes, and closing it closes
them; children share the parent's connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .._exceptions import ClientClosedError
from ..events import CallHandover, EventHub, Overflow, Subscription
from ..protocol import Key, KindName, check_request, new_id, scoped_dialog
from ..spec import HttpMethod
from ..spec.models import Message, StasisStart
from ._backend import Backend, JsonValue, Result
from ._entities import ModelHandles
from ._handlers import EventCallback, EventHandler

if TYPE_CHECKING:
    from ._bridges import Bridges
    from ._channels import ChannelHandle, Channels
    from ._media import Playbacks, Recordings, Sounds
    from ._system import Applications, Asterisk, DeviceStates, Endpoints, Events, Mailboxes

__all__ = ["Call", "Calls", "Client", "Connecting", "PendingCalls", "PendingSubscription"]

logger = logging.getLogger(__name__)

_HTTP_METHODS = frozenset(("GET", "POST", "PUT", "DELETE"))


class PendingSubscription:
    """A subscription being opened: await it, or use it as an async context manager.

    ```python
    async with client.subscribe("StasisStart") as events: ...   # closed on exit
    events = await client.subscribe("StasisStart")               # close it yourself
    ```
    Either way the subscription is live (its bus subjects subscribed) before your code runs on.
    """

    __slots__ = ("_before", "_client", "_options", "_sub", "_types")

    def __init__(
        self,
        client: Client,
        types: tuple[str, ...],
        options: dict[str, Any],
        before: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._client = client
        self._types = types
        self._options = options
        self._before = before
        self._sub: Subscription | None = None

    async def _open(self) -> Subscription:
        self._sub = await self._client._open_subscription(self._types, **self._options)
        if self._before is not None:
            try:
                await self._before()
            except BaseException:
                self._sub.close()
                raise
        return self._sub

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._open().__await__()

    async def __aenter__(self) -> Subscription:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            self._sub.close()


class Call:
    """A call that `listen()` gave to this instance.

    Attributes:
        event: the StasisStart that brought the call (for a handed-over call, one made from
            the channel as it was at the handover).
        channel: the channel's handle, in the call's dialog.
        client: a child client scoped to the call's dialog: entities it creates join the
            dialog, and its subscriptions see the dialog's events. Closing it ends the call's
            subscriptions (not the call).
        events: every event of the call's dialog, opened before the channel was bound to it,
            so nothing after the StasisStart is missed. A `CallHandover` among them naming
            this instance's call means it is no longer this instance's (docs/handover.md).
        handover: the `CallHandover` that brought the call, when its previous owner was gone
            or draining (None for a new call): the bridges it is in, the previous owner, the
            reason.
    """

    __slots__ = ("channel", "client", "event", "events", "handover")

    def __init__(
        self,
        event: StasisStart,
        channel: ChannelHandle,
        client: Client,
        events: Subscription,
        handover: CallHandover | None = None,
    ) -> None:
        self.event = event
        self.channel = channel
        self.client = client
        self.events = events
        self.handover = handover

    @property
    def handed_over(self) -> bool:
        """Whether the call came from another instance (`handover` says why)."""
        return self.handover is not None

    @property
    def state(self) -> bytes:
        """The last state saved beside the call (`save_state`) before it was handed over
        (`b""` for a new call)."""
        return self.handover.state if self.handover is not None else b""

    async def save_state(self, state: bytes) -> None:
        """Keep `state` beside the call on its server: whoever owns the call next (after a
        crash or a drain of this instance) receives it. Each save replaces the last.

        Raises:
            TooLargeError: over the server's `proxy.max_call_state` (4 KiB by default); the
                previous state is kept.
            ConflictError: the call is no longer this instance's.
            NoProxyError: no server keeps it (a native client, a Go server).
        """
        await self.client._backend.save_state(self.channel.key, state)

    @property
    def dialog(self) -> str:
        """The call's dialog ID."""
        return self.client.dialog

    async def close(self) -> None:
        """Close the call's subscriptions and its child client."""
        await self.client.close()

    async def __aenter__(self) -> Call:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Call {self.channel.key}>"


class PendingCalls:
    """`listen()` being opened: await it for `Calls`, or use it as an async context manager."""

    __slots__ = ("_calls", "_open")

    def __init__(self, open_calls: Callable[[], Coroutine[Any, Any, Calls]]) -> None:
        self._open = open_calls
        self._calls: Calls | None = None

    def __await__(self) -> Generator[Any, None, Calls]:
        return self._open().__await__()

    async def __aenter__(self) -> Calls:
        self._calls = await self._open()
        return self._calls

    async def __aexit__(self, *exc: object) -> None:
        if self._calls is not None:
            self._calls.close()


class Calls:
    """The calls `listen()` hands to this instance: an async iterator of `Call`."""

    __slots__ = ("_client", "_sub")

    def __init__(self, client: Client, sub: Subscription) -> None:
        self._client = client
        self._sub = sub

    @property
    def dropped(self) -> int:
        """StasisStart events lost to a full queue (see `listen(maxsize=...)`)."""
        return self._sub.dropped

    def __aiter__(self) -> Calls:
        return self

    async def __anext__(self) -> Call:
        while True:
            event = await self._sub.__anext__()
            call = await self._client._take_call(event)  # type: ignore[arg-type]
            if call is not None:
                return call

    async def next(self, timeout: float | None = None) -> Call:
        """The next call this instance took (offers another instance took first are skipped).

        Raises:
            TimeoutError: none within `timeout`.
        """
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def close(self) -> None:
        """Stop taking calls."""
        self._sub.close()

    async def __aenter__(self) -> Calls:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Client(ModelHandles):
    """An asyncio ARI client: resource namespaces, handles, and event subscriptions.

    Obtain one from `ari_proxy.ari.connect()` (direct to one Asterisk) or
    `ari_proxy.client.connect()` (over NATS or RabbitMQ); the two behave the same.

    Attributes:
        timeout: default seconds per request (None: the backend's default).
        retries: extra attempts of a request that timed out (None: the backend's default).
        dialog: the dialog this client is scoped to (`""`: none). Requests carry it in their
            keys, entities they create join it, and subscriptions see the dialog's events.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        dialog: str = "",
        parent: Client | None = None,
    ) -> None:
        from ._bridges import Bridges
        from ._channels import Channels
        from ._media import Playbacks, Recordings, Sounds
        from ._system import Applications, Asterisk, DeviceStates, Endpoints, Events, Mailboxes

        self._backend = backend
        self._parent = parent
        self.timeout = timeout
        self.retries = retries
        self.dialog = dialog
        self._closed = False
        self._subscriptions: set[Subscription] = set()
        self._listening: set[Subscription] = set()  # of listen(), ended by drain()
        self._children: set[Client] = set()
        self._handlers: set[EventHandler] = set()
        self.channels: Channels = Channels(self)
        self.bridges: Bridges = Bridges(self)
        self.playbacks: Playbacks = Playbacks(self)
        self.recordings: Recordings = Recordings(self)
        self.sounds: Sounds = Sounds(self)
        self.endpoints: Endpoints = Endpoints(self)
        self.device_states: DeviceStates = DeviceStates(self)
        self.mailboxes: Mailboxes = Mailboxes(self)
        self.applications: Applications = Applications(self)
        self.asterisk: Asterisk = Asterisk(self)
        self.events: Events = Events(self)

    # --- identity ----------------------------------------------------------------------------

    @property
    def application(self) -> str:
        """The ARI application this client acts for."""
        return self._backend.application

    @property
    def node(self) -> str:
        """The Asterisk entity ID when the client talks to one Asterisk, else `""`."""
        return self._backend.node

    @property
    def hub(self) -> EventHub:
        """The event fan-out (its counters show published and dropped events)."""
        return self._backend.hub

    @property
    def closed(self) -> bool:
        """Whether `close()` was called (on this client or a parent)."""
        return self._closed

    def key(self, kind: str, ident: str, node: str | None = None) -> Key:
        """A key for an entity of this client: its application, node and dialog."""
        return Key(kind, ident, self.node if node is None else node, self.dialog, self.application)

    def adopt(self, key: Key) -> Key:
        """A key returned by a server, carrying this client's dialog."""
        if self.dialog and key.dialog != self.dialog:
            return key.with_dialog(self.dialog)
        return key

    # --- requests ----------------------------------------------------------------------------

    @overload
    async def request(
        self, kind: KindName, key: Key | None, payload: Any = None, *, timeout: float | None = None
    ) -> Result: ...

    @overload
    async def request(
        self,
        method: HttpMethod,
        path: str,
        /,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        body: JsonValue = None,
        timeout: float | None = None,
    ) -> JsonValue: ...

    async def request(
        self,
        kind: str,
        key: Key | str | None = None,
        payload: Any = None,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        body: JsonValue = None,
        timeout: float | None = None,
    ) -> Result | JsonValue:
        """Send one request kind (the low-level door every method goes through), or, given an
        HTTP method and a path, call any ARI operation and get its JSON (None when empty).

        The second form is the escape hatch for operations not generated yet, with their
        encoding, deadlines, errors and retries (docs/client.md, "The escape hatch"):
        `await client.request("POST", "/channels/{channelId}/answer", path_params={"channelId":
        cid})`. Native client only.

        Raises:
            ClientClosedError: the client was closed.
            InvalidRequestError: a value Asterisk would misread (`protocol.check_request`),
                or a method, path or parameter it would not take, refused before sending.
            AriError: Asterisk refused (subclass by HTTP status).
            RequestTimeout, TransportError, NoProxyError: the request did not get through.
            UnknownKindError: a method and path through the proxy client.
        """
        if self._closed:
            raise ClientClosedError("client is closed")
        limit = self.timeout if timeout is None else timeout
        if kind in _HTTP_METHODS:
            if not isinstance(key, str):
                raise TypeError("request(method, path): the path must be a str")
            return await self._backend.raw_request(
                kind,  # type: ignore[arg-type]
                key,
                path_params=path_params or {},
                query=query or {},
                body=body,
                timeout=limit,
                retries=self.retries,
            )
        if isinstance(key, str):
            raise TypeError(f"request({kind!r}, ...): a request kind takes a Key, not a str")
        if key is not None and self.dialog and key.dialog != self.dialog:
            key = key.with_dialog(self.dialog)
        # Refused here, before anything is sent, what a server would refuse (a control
        # character in an ID, an integer out of its ARI range): `InvalidRequestError`.
        check_request(kind, key, payload, app=self.application, node=self.node)
        return await self._backend.execute(
            kind,  # type: ignore[arg-type]
            key,
            payload,
            timeout=limit,
            retries=self.retries,
        )

    # --- events ------------------------------------------------------------------------------

    def subscribe(
        self,
        *types: str,
        key: Key | None = None,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
        before: Callable[[], Awaitable[object]] | None = None,
    ) -> PendingSubscription:
        """Subscribe to events: of `types` (all when none), of the entity `key` (any when None).

        Each subscription has its own queue of `maxsize` events; when it is full, `overflow`
        decides (drop the new event, drop the oldest, or close the subscription) and the drop is
        counted in `Subscription.dropped` and `client.hub.dropped`. `where` filters further.
        `before` runs once the subscription is live (handles use it to bind their entity to
        the client's dialog).
        """
        options = {"key": key, "maxsize": maxsize, "overflow": overflow, "where": where}
        return PendingSubscription(self, types, options, before)

    async def _open_subscription(
        self,
        types: tuple[str, ...],
        *,
        key: Key | None,
        maxsize: int,
        overflow: Overflow,
        where: Callable[[Message], bool] | None,
    ) -> Subscription:
        if self._closed:
            raise ClientClosedError("client is closed")
        if self.dialog:
            key = (key or Key()).with_dialog(self.dialog)
        scope = key.dialog if key is not None else ""
        await self._backend.retain(scope)
        sub = self.hub.subscribe(
            types or None, key, maxsize=maxsize, overflow=overflow, where=where
        )
        self._subscriptions.add(sub)

        def forget(closed: Subscription) -> None:
            self._subscriptions.discard(closed)
            self._backend.release(scope)

        sub._on_close.append(forget)
        return sub

    async def once(
        self,
        *types: str,
        key: Key | None = None,
        timeout: float | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """Wait for one event (subscribe, take the first, unsubscribe).

        Events that happen before the call are not seen: subscribe first when the event is
        caused by your own request.

        Raises:
            TimeoutError: none arrived within `timeout`.
        """
        async with self.subscribe(*types, key=key, where=where, maxsize=1) as sub:
            return await sub.next(timeout)

    # --- handlers --------------------------------------------------------------------------

    @overload
    def on(
        self,
        types: str | Sequence[str],
        handler: EventCallback,
        /,
        *,
        key: Key | None = None,
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
        key: Key | None = None,
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
        key: Key | None = None,
        maxsize: int = 1000,
        overflow: Overflow = Overflow.DROP_NEWEST,
        where: Callable[[Message], bool] | None = None,
    ) -> EventHandler | Callable[[EventCallback], EventHandler]:
        """Call `handler(event)` (a function or coroutine function) for each event of `types`
        (a name, or several; `[]`: all), over `subscribe` with the same options.

        `await client.on("StasisStart", on_start)`, or as a decorator: `@client.on(...)`. Each
        handler gets its events in order, one at a time; handlers run side by side; a failure
        is logged and counted; a handler that falls behind drops by `overflow` (docs/client.md,
        "Handlers", has the whole contract). Closing the client closes its handlers.

        Returns:
            The `EventHandler` (await it: live; `close()` it: unregistered), or, without
            `handler`, a decorator that registers the function and returns its `EventHandler`.
        """
        names = (types,) if isinstance(types, str) else tuple(types)
        pending = self.subscribe(*names, key=key, maxsize=maxsize, overflow=overflow, where=where)
        return self._register(names, pending, handler)

    def _register(
        self,
        names: tuple[str, ...],
        pending: PendingSubscription,
        handler: EventCallback | None,
    ) -> EventHandler | Callable[[EventCallback], EventHandler]:
        """`on()` for a subscription being opened (of this client, or of a handle)."""

        def register(callback: EventCallback) -> EventHandler:
            if self._closed:
                raise ClientClosedError("client is closed")
            registered = EventHandler(self, callback, names, pending)
            self._handlers.add(registered)
            return registered

        return register if handler is None else register(handler)

    @property
    def handlers(self) -> frozenset[EventHandler]:
        """This client's live handlers (not its children's)."""
        return frozenset(self._handlers)

    def listen(self, *, maxsize: int = 1000) -> PendingCalls:
        """Take calls: each StasisStart of the application goes to exactly one listening
        instance in the cluster, and the instance that takes a call gets that call's later
        events through the call's dialog (so an instance handling K of N calls receives the
        events of about K calls).

        ```python
        async with client.listen() as calls:       # or: calls = await client.listen()
            async for call in calls:
                await call.channel.answer()
        ```
        """
        return PendingCalls(lambda: self._open_calls(maxsize))

    async def _open_calls(self, maxsize: int) -> Calls:
        if self._closed:
            raise ClientClosedError("client is closed")
        sub = await self._backend.listen(maxsize=maxsize)
        self._subscriptions.add(sub)
        self._listening.add(sub)
        sub._on_close.append(self._subscriptions.discard)
        sub._on_close.append(self._listening.discard)
        return Calls(self, sub)

    async def _take_call(self, offer: StasisStart | CallHandover) -> Call | None:
        """The offered call as this instance's `Call`, or None when it is not this instance's
        (the dialog's subscription opens first, so nothing after the take is missed)."""
        from ._channels import ChannelHandle

        handover = offer if isinstance(offer, CallHandover) else None
        event = offer if isinstance(offer, StasisStart) else _as_stasis_start(offer)
        scoped = self.scoped()
        try:
            events = await scoped.subscribe()
            key = Key(
                "channel",
                event.channel.id,
                event.asterisk_id or "",
                scoped.dialog,
                event.application,
            )
            taken = await self._backend.take(key)
        except BaseException:
            await scoped.close()
            raise
        if not taken:
            await scoped.close()
            return None
        return Call(event, ChannelHandle(scoped, key), scoped, events, handover)

    async def drain(self) -> int:
        """Take no more calls and hand every call this instance owns over to the other
        instances in `listen()` (docs/handover.md): the `listen()` iteration ends, the calls'
        `Call` objects are closed (their events end, their requests raise
        `ClientClosedError`), then each is released to its server, which offers it to the
        group as a `CallHandover`. Return how many calls were handed over. Call it before
        stopping an instance; `ari_proxy.serve` does on SIGTERM."""
        keys = await self._backend.stop_taking()
        for sub in list(self._listening):
            sub.close()
        # The application stops acting on the calls before they are released: from then on
        # their requests raise ClientClosedError, so the next owner is the only one.
        dialogs = {key.dialog for key in keys}
        for child in [c for c in self._children if c.dialog in dialogs]:
            await child.close()
        return len(await self._backend.release_calls(keys))

    # --- lifecycle ---------------------------------------------------------------------------

    def child(self) -> Client:
        """A client sharing this connection that owns (and closes) its own subscriptions."""
        return self._make_child(self.dialog, self.timeout, self.retries)

    def scoped(self, dialog: str | None = None) -> Client:
        """A child client in `dialog`: its requests carry the dialog, and it sees its events.

        Without `dialog`, a new one named `<application>.<id>`: its events then travel on a
        subject that bus permissions can keep to the application (docs/security.md).
        """
        if dialog is None:
            dialog = scoped_dialog(self.application, new_id("dl"))
        return self._make_child(dialog, self.timeout, self.retries)

    def with_options(self, *, timeout: float | None = None, retries: int | None = None) -> Client:
        """A child client whose requests use this timeout and number of retries.

        ```python
        await client.with_options(timeout=0.5, retries=2).channels.handle(cid).answer()
        ```
        """
        return self._make_child(
            self.dialog,
            self.timeout if timeout is None else timeout,
            self.retries if retries is None else retries,
        )

    def _make_child(self, dialog: str, timeout: float | None, retries: int | None) -> Client:
        if self._closed:
            raise ClientClosedError("client is closed")
        child = Client(self._backend, timeout=timeout, retries=retries, dialog=dialog, parent=self)
        self._children.add(child)
        return child

    @property
    def subscriptions(self) -> int:
        """Open subscriptions of this client and its children."""
        return len(self._subscriptions) + sum(c.subscriptions for c in self._children)

    async def close(self) -> None:
        """Close every subscription and child; the root client also closes the connection."""
        if self._closed:
            return
        self._closed = True
        for child in list(self._children):
            await child.close()
        for handler in list(self._handlers):
            await handler.aclose()
        for sub in list(self._subscriptions):
            sub.close()
        if self._parent is not None:
            self._parent._children.discard(self)
        else:
            await self._backend.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        scope = f" dialog={self.dialog}" if self.dialog else ""
        return f"<{type(self).__name__} app={self.application} node={self.node or '*'}{scope}>"


def _as_stasis_start(handover: CallHandover) -> StasisStart:
    """The StasisStart a handed-over call's `Call.event` holds: its channel as it was at the
    handover."""
    return StasisStart(
        application=handover.application,
        timestamp=handover.timestamp,
        asterisk_id=handover.asterisk_id,
        channel=handover.channel,
    )


C = TypeVar("C", bound=Client, covariant=True)


class Connecting(Generic[C]):
    """What `connect()` returns: await it for the client, or use it as an async context
    manager that closes the client on exit."""

    __slots__ = ("_client", "_factory")

    def __init__(self, factory: Callable[[], Awaitable[C]]) -> None:
        self._factory = factory
        self._client: C | None = None

    def __await__(self) -> Generator[Any, None, C]:
        return self._factory().__await__()

    async def __aenter__(self) -> C:
        self._client = await self._factory()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
