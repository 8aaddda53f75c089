"""Event handlers: `Client.on("StasisStart", handler)`, a function called for each event.

A handler is a subscription and one task that reads it:

- **order**: a handler gets its events in the order the client received them, one at a time:
  the next event is not handed over until the handler returned (or, if it is a coroutine
  function, its coroutine finished). Different handlers run concurrently, each in its own
  task, with no order between them.
- **failures**: an exception raised by the handler is logged (with its traceback) and counted
  in `failed`; the handler gets the next event as usual. The WebSocket or bus reader never
  runs handler code: it only queues.
- **backlog**: each handler has its own bounded queue (`maxsize`); a handler that falls behind
  loses events to its `Overflow` policy, counted in `dropped` (and in `client.hub.dropped`).
  With `Overflow.CLOSE` the handler stops, with `error` set.
- **end**: `close()` (or closing the client) stops the handler: the event in hand is
  cancelled, queued ones are not delivered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeAlias

from .._exceptions import ClientClosedError, ClosedError, SubscriptionOverflowError
from ..events import Subscription, event_type

if TYPE_CHECKING:
    from ._client import Client, PendingSubscription

__all__ = ["EventCallback", "EventHandler"]

logger = logging.getLogger(__name__)

EventCallback: TypeAlias = Callable[[Any], Awaitable[object] | object]
"""A handler: a function or coroutine function taking one event (its return value is unused)."""


class EventHandler:
    """A function registered with `Client.on` (or `Handle.on`), called for each event in order.

    Await it (`await client.on(...)`) to know that its subscription is live: events the
    client receives from then on reach it. `close()` unregisters it.

    Attributes:
        callback: the function.
        handled: events the function returned from.
        failed: events on which it raised (each logged with its traceback).
        error: what stopped it, other than `close()` (the subscription failed to open, or
            overflowed under `Overflow.CLOSE`), else None.
    """

    __slots__ = (
        "_client",
        "_pending",
        "_ready",
        "_sub",
        "_task",
        "_types",
        "callback",
        "error",
        "failed",
        "handled",
    )

    def __init__(
        self,
        client: Client,
        callback: EventCallback,
        types: tuple[str, ...],
        pending: PendingSubscription,
    ) -> None:
        self.callback = callback
        self.handled = 0
        self.failed = 0
        self.error: BaseException | None = None
        self._client = client
        self._types = types
        self._pending = pending
        self._sub: Subscription | None = None
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._task = loop.create_task(self._run(), name=f"ari-handler-{self.name}")

    @property
    def name(self) -> str:
        """The function's qualified name (for logs)."""
        return getattr(self.callback, "__qualname__", None) or repr(self.callback)

    @property
    def dropped(self) -> int:
        """Events this handler lost to its overflow policy."""
        return self._sub.dropped if self._sub is not None else 0

    @property
    def closed(self) -> bool:
        """Whether the handler gets no more events."""
        return self._task.done()

    async def ready(self) -> EventHandler:
        """Wait until the handler's subscription is live.

        Raises:
            ClientClosedError: the handler (or its client) was closed first.
            TransportError: the bus subscription could not be made (proxy client).
        """
        await asyncio.shield(self._ready)
        return self

    async def wait_closed(self) -> None:
        """Wait until the handler gets no more events: closed, or stopped by `error`."""
        await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    def __await__(self) -> Generator[Any, None, EventHandler]:
        return self.ready().__await__()

    async def _run(self) -> None:
        try:
            sub = await self._pending
        except asyncio.CancelledError:
            self._fail_ready(ClientClosedError("event handler closed"))
            raise
        except Exception as exc:
            self.error = exc
            self._fail_ready(exc)
            logger.error("event handler %s could not subscribe: %s", self.name, exc)
            return
        self._sub = sub
        self._ready.set_result(None)
        callback = self.callback
        try:
            while True:
                try:
                    event = await sub.next()
                except SubscriptionOverflowError as exc:
                    self.error = exc
                    logger.error("event handler %s stopped: %s", self.name, exc)
                    return
                except ClosedError:
                    return
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self.failed += 1
                    logger.exception("event handler %s failed on %s", self.name, event_type(event))
                else:
                    self.handled += 1
        finally:
            sub.close()

    def close(self) -> None:
        """Unregister: no more events (the one being handled is cancelled)."""
        self._fail_ready(ClientClosedError("event handler closed"))  # `ready()` must not hang
        if self._sub is not None:
            self._sub.close()
        self._task.cancel()
        self._client._handlers.discard(self)

    async def aclose(self) -> None:
        """`close()`, then wait until the handler's task has ended."""
        self.close()
        if self._task is not asyncio.current_task():
            await asyncio.gather(self._task, return_exceptions=True)

    def _fail_ready(self, exc: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(exc)
            self._ready.exception()  # retrieved: `ready()` raises it for whoever asks

    def __repr__(self) -> str:
        state = "closed" if self.closed else "live" if self._ready.done() else "opening"
        types = ",".join(self._types) or "*"
        return (
            f"<EventHandler {self.name} {types} {state} handled={self.handled} "
            f"failed={self.failed} dropped={self.dropped}>"
        )
