"""`HandlerRunner`: how every backend runs a subscription's handler for each message.

A plain function runs inline; a coroutine function runs as a task, at most `max_inflight` at
once per subscription, beyond which messages are dropped and counted. `drain_all` waits for the
tasks of ended subscriptions when a transport closes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._transport import BusMessage, Handler

__all__ = ["HandlerRunner", "drain_all"]

logger = logging.getLogger(__name__)

# One warning per subscription per this many seconds while it drops messages: a flood must not
# turn into a flood of log lines.
_DROP_WARNING_INTERVAL = 10.0


class HandlerRunner:
    """Runs one subscription's handler for each message it receives.

    A plain function runs inline. A coroutine function runs as a task, with at most
    `max_inflight` tasks in flight; a message that finds the limit reached is dropped, counted
    (`dropped`, and `on_drop` for the transport's total) and reported by a rate-limited
    warning. A handler's exception is logged with the subject and never ends the subscription.
    """

    def __init__(
        self,
        subject: str,
        handler: Handler,
        *,
        max_inflight: int,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.subject = subject
        self.dropped = 0
        self._handler = handler
        self._max_inflight = max_inflight
        self._on_drop = on_drop
        self._tasks: set[asyncio.Future[Any]] = set()
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        self._unreported = 0
        self._last_warning = float("-inf")

    @property
    def inflight(self) -> int:
        """Handler tasks still running."""
        return len(self._tasks)

    def __call__(self, message: BusMessage) -> None:
        """Hand `message` to the handler (inline, or as a task)."""
        if self._is_async and len(self._tasks) >= self._max_inflight:
            self._drop()
            return
        try:
            result = self._handler(message)
        except Exception:
            logger.exception("bus handler for subject %s failed", message.subject)
            return
        if result is None:
            return
        # A plain callable (a functools.partial of a coroutine function, say) may still hand
        # back an awaitable: it counts against the same limit.
        if len(self._tasks) >= self._max_inflight:
            _discard(result)
            self._drop()
            return
        self._start(result)

    def _start(self, awaitable: Awaitable[None]) -> None:
        if inspect.iscoroutine(awaitable):
            task: asyncio.Future[Any] = asyncio.get_running_loop().create_task(
                awaitable, name=f"bus handler {self.subject}"
            )
        else:
            task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("bus handler for subject %s failed", self.subject, exc_info=exc)

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        if self._on_drop is not None:
            self._on_drop()
        now = time.monotonic()
        if now - self._last_warning >= _DROP_WARNING_INTERVAL:
            logger.warning(
                "dropped %d message(s) on %s: %d handler tasks already in flight",
                self._unreported,
                self.subject,
                self._max_inflight,
            )
            self._unreported = 0
            self._last_warning = now

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the handler tasks in flight, then cancel the rest.

        The calling task is never waited for (a handler may close its own transport). Returns
        whether every task finished by itself.
        """
        current = asyncio.current_task()
        tasks = {task for task in self._tasks if task is not current}
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning(
                "cancelled %d handler task(s) on %s still running after %.1fs",
                len(pending),
                self.subject,
                timeout,
            )
            await asyncio.wait(pending, timeout=1.0)
        return not pending


async def drain_all(runners: set[HandlerRunner], deadline: float) -> None:
    """Drain `runners` one after the other, all by `deadline` (event loop time).

    In the caller's task, not under `gather`: a runner must recognise the caller when it is
    one of its own handlers (a handler closing its transport) and not wait for it.
    """
    loop = asyncio.get_running_loop()
    for runner in list(runners):
        await runner.drain(max(0.0, deadline - loop.time()))


def _discard(awaitable: object) -> None:
    """Close a coroutine that will never run, so Python does not warn it was never awaited."""
    close = getattr(awaitable, "close", None)
    if inspect.iscoroutine(awaitable) and close is not None:
        close()
