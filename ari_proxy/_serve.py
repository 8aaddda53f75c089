"""`serve`: the loop most applications run, with a drain on SIGTERM so a deploy drops no call.

```python
async def handle(call: ari_proxy.Call) -> None:
    await call.channel.answer()
    async for event in call.events: ...

async with ari_proxy.connect("nats://…", application="ivr") as client:
    await ari_proxy.serve(client, handle)   # until SIGTERM or SIGINT; then hands calls over
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

from ._exceptions import AriProxyError, ClosedError
from .api import Call, Client

__all__ = ["serve"]

logger = logging.getLogger(__name__)


async def serve(
    client: Client,
    handle: Callable[[Call], Awaitable[object]],
    *,
    stop: asyncio.Event | None = None,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    maxsize: int = 1000,
) -> int:
    """Take calls with `client.listen()`, run `handle(call)` for each in a task of its own,
    until one of `signals` arrives (or `stop` is set); then drain: take no more calls, hand the
    live ones over to the other instances (`client.drain()`, docs/handover.md), and cancel the
    handlers (the calls are no longer this instance's: their requests now raise
    `ClientClosedError`). Returns how many calls were handed over.

    A handler's call is closed when the handler returns.
    """
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stopping.set)
            installed.append(sig)
    handlers: set[asyncio.Task[None]] = set()

    async def run(call: Call) -> None:
        async with call:
            try:
                await handle(call)
            except (AriProxyError, ClosedError) as exc:
                logger.warning("call %s: %s", call.channel.id, exc)

    async def take() -> None:
        async with client.listen(maxsize=maxsize) as calls:
            async for call in calls:
                task = loop.create_task(run(call), name=f"call {call.channel.id}")
                handlers.add(task)
                task.add_done_callback(handlers.discard)

    taker = loop.create_task(take(), name="serve")
    stopper = loop.create_task(stopping.wait())
    try:
        await asyncio.wait({taker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if taker.done():
            taker.result()  # listen() ended on its own: raise what it raised
        handed = await client.drain()
        logger.info("drained: calls handed over", extra={"calls": handed})
        return handed
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for task in (taker, stopper, *handlers):
            task.cancel()
        await asyncio.gather(taker, stopper, *handlers, return_exceptions=True)
