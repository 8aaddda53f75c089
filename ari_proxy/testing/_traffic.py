"""Steady call traffic through the proxy, and what became of each call.

`CallSource` originates Local calls into an application at a steady rate straight through
Asterisk's ARI (so a bus outage does not stop calls from arriving), and `Taker` is one
application instance in `listen()` that takes calls, keeps each up for a while and hangs it up.
`Ledger` puts both sides together: calls placed, taken (by whom, how often), never taken, and
left in Asterisk. The delivery tests use them under faults; so can an application's own tests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from .._exceptions import AriProxyError, NotFoundError
from ..api import Call, Calls, Client
from ..ari import AriClient
from ..ari import connect as ari_connect
from ..client import connect as proxy_connect
from ..events import ConnectionGap, event_type
from ..spec.models import Message
from ._asterisk import Instance

__all__ = ["CallSource", "Ledger", "Taker", "takers"]

logger = logging.getLogger(__name__)


@dataclass
class Ledger:
    """What happened to the calls of one run.

    Attributes:
        placed: channel IDs originated, in order.
        taken: channel ID -> the takers that got it (one, unless delivery went wrong).
        ended: channel IDs whose ChannelDestroyed (or StasisEnd) their taker saw.
        gaps: channel ID -> the `ConnectionGap` events its taker received on the call.
        events: channel ID -> the types of the events its taker received, in order.
    """

    placed: list[str] = field(default_factory=list)
    taken: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    ended: set[str] = field(default_factory=set)
    gaps: dict[str, list[ConnectionGap]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    events: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))

    @property
    def never_taken(self) -> list[str]:
        return [c for c in self.placed if c not in self.taken]

    @property
    def taken_twice(self) -> list[str]:
        return [c for c, who in self.taken.items() if len(who) > 1]

    def summary(self) -> dict[str, int]:
        """Counts for a report line."""
        return {
            "placed": len(self.placed),
            "taken": len(self.taken),
            "never_taken": len(self.never_taken),
            "taken_twice": len(self.taken_twice),
            "ended": len(self.ended),
        }


class CallSource:
    """Originates `Local/wait@default` calls into `application` at `rate` per second, through
    a native ARI connection of its own (application `<application>-source`)."""

    def __init__(self, asterisk: Instance, application: str, ledger: Ledger) -> None:
        self.asterisk = asterisk
        self.application = application
        self.ledger = ledger
        self.client: AriClient | None = None
        self.failed = 0

    async def __aenter__(self) -> CallSource:
        self.client = await ari_connect(
            self.asterisk.http_url,
            self.asterisk.username,
            self.asterisk.password,
            f"{self.application}-source",
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.close()

    async def place(self, count: int, rate: float) -> None:
        """Originate `count` calls, `rate` per second (pacing, not synchronisation)."""
        assert self.client is not None
        for _ in range(count):
            started = time.monotonic()
            try:
                handle = await self.client.channels.originate(
                    "Local/wait@default", app=self.application
                )
                self.ledger.placed.append(handle.id)
            except AriProxyError as exc:
                self.failed += 1
                logger.warning("could not place a call: %s", exc)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))

    async def left_in_asterisk(self) -> list[str]:
        """The placed calls that still exist in Asterisk."""
        assert self.client is not None
        existing = {h.id for h in await self.client.channels.list()}
        return [c for c in self.ledger.placed if c in existing]

    async def hang_up_all(self) -> None:
        """Hang up whatever of the placed calls is left."""
        assert self.client is not None
        for channel in await self.left_in_asterisk():
            with contextlib.suppress(NotFoundError):
                await self.client.channels.handle(channel).hangup()


class Taker:
    """One application instance in `listen()`: takes each call, keeps it up `hold` seconds
    (or until `release()` for `hold=None`), hangs it up, and records every event of the call.

    `during(call)` runs on each call once it is taken (for example, to act on it after a fault).
    """

    def __init__(
        self,
        name: str,
        client: Client,
        ledger: Ledger,
        *,
        hold: float | None = 1.0,
        during: Callable[[Call], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.ledger = ledger
        self.hold = hold
        self.during = during
        self.calls: dict[str, Call] = {}
        self._ended: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self._release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._listening: Calls | None = None
        self.errors: list[BaseException] = []

    async def start(self) -> None:
        """Start listening (returns once the listen subscription is live)."""
        self._listening = await self.client.listen()
        self._loop = asyncio.get_running_loop().create_task(self._take(), name=self.name)

    async def _take(self) -> None:
        assert self._listening is not None
        async for call in self._listening:
            self.ledger.taken[call.channel.id].append(self.name)
            task = asyncio.get_running_loop().create_task(self._serve(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, call: Call) -> None:
        channel = call.channel.id
        self.calls[channel] = call
        watcher = asyncio.get_running_loop().create_task(self._watch(call))
        try:
            try:
                await call.channel.answer()
                if self.during is not None:
                    await self.during(call)
            except (AriProxyError, TimeoutError) as exc:
                self.errors.append(exc)  # a fault in the middle of the call: still end it
                logger.warning("%s: call %s: %s", self.name, channel, exc)
            if self.hold is None:
                await self._release.wait()
            else:
                await asyncio.sleep(self.hold)  # pacing: the call is kept up on purpose
            await self._hang_up(call)
            async with asyncio.timeout(15):
                await self._ended[channel].wait()
        except TimeoutError as exc:
            self.errors.append(exc)
            logger.warning("%s: call %s did not end: %s", self.name, channel, exc)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await call.close()

    async def _hang_up(self, call: Call) -> None:
        """Hang the call up, trying again while the link is down (for at most 30 s)."""
        async with asyncio.timeout(30):
            while True:
                try:
                    await call.channel.hangup()
                    return
                except NotFoundError:
                    return
                except AriProxyError as exc:
                    logger.info(
                        "%s: hang-up of %s failed, again: %s", self.name, call.channel.id, exc
                    )
                    await asyncio.sleep(0.2)  # pacing between attempts

    async def _watch(self, call: Call) -> None:
        channel = call.channel.id
        async for event in call.events:
            self._record(channel, event)

    def _record(self, channel: str, event: Message) -> None:
        kind = event_type(event)
        self.ledger.events[channel].append(kind)
        if isinstance(event, ConnectionGap):
            self.ledger.gaps[channel].append(event)
        if kind in ("ChannelDestroyed", "StasisEnd"):
            self.ledger.ended.add(channel)
            self._ended[channel].set()

    def release(self) -> None:
        """Let the calls held with `hold=None` end."""
        self._release.set()

    async def stop(self) -> None:
        """Stop taking calls and let the calls in hand end."""
        if self._listening is not None:
            self._listening.close()
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        self.release()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=20)


@contextlib.asynccontextmanager
async def takers(
    bus_url: str | list[str], application: str, ledger: Ledger, count: int = 3, **options: object
) -> AsyncIterator[list[Taker]]:
    """`count` instances in `listen()` on `application`, each on its own proxy connection
    (2 s timeout, 1 retry); `options` go to each `Taker`."""
    async with contextlib.AsyncExitStack() as stack:
        group = []
        for i in range(count):
            client = await stack.enter_async_context(
                proxy_connect(application, bus_url, timeout=2.0, retries=1)
            )
            taker = Taker(f"instance-{i}", client, ledger, **options)  # type: ignore[arg-type]
            await taker.start()
            stack.push_async_callback(taker.stop)
            group.append(taker)
        yield group
