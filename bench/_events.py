"""Event delivery, measured the same way wherever it is measured: user events raised through
ARI, counted and timed where each subscriber receives them. Loss is counted, not waited for."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import ari_proxy

from ._stats import Sample

QUIET = 2.0
"""Seconds without a new event, once every event is raised, after which the missing ones are
counted as lost."""


@dataclass(frozen=True)
class Delivery:
    """What `n` raised events became, over all subscribers."""

    raised: int
    latencies: list[float]  # seconds from the raise to each delivery
    wall: float  # from the first raise to the last delivery
    expected: int  # raised x subscribers

    @property
    def lost(self) -> int:
        return self.expected - len(self.latencies)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    @property
    def sample(self) -> Sample:
        return Sample("events", self.latencies, self.wall)


async def deliver(
    producer: ari_proxy.Client,
    consumers: list[ari_proxy.Client],
    n: int,
    *,
    in_flight: int = 32,
    application: str | None = None,
) -> Delivery:
    """Raise `n` user events for `application` (default: the producer's) through `producer`,
    `in_flight` at a time (1: each waits until every subscriber has it), and time them at each
    of `consumers`, subscribed to all of them."""
    run = f"{time.monotonic_ns()}"
    sent: dict[str, float] = {}
    received: list[float] = []
    arrivals = [asyncio.Event() for _ in range(n)]
    counts = [0] * n
    last = time.perf_counter()
    progress = asyncio.Event()
    subs = [await c.subscribe("ChannelUserevent", maxsize=n * 2) for c in consumers]

    async def consume(sub: ari_proxy.Subscription) -> None:
        nonlocal last
        while True:
            event = await sub.next()
            tag = str(event.userevent.get("tag", ""))  # type: ignore[attr-defined]
            if tag in sent:
                last = time.perf_counter()
                received.append(last - sent[tag])
                progress.set()
                i = int(tag.rsplit("-", 1)[1])
                counts[i] += 1
                if counts[i] == len(consumers):
                    arrivals[i].set()

    tasks = [asyncio.create_task(consume(s)) for s in subs]
    semaphore = asyncio.Semaphore(in_flight)

    async def raise_one(i: int) -> None:
        async with semaphore:
            tag = f"{run}-{i}"
            sent[tag] = time.perf_counter()
            await producer.events.user_event(
                "bench", variables={"tag": tag}, application=application
            )
            if in_flight == 1:
                # One at a time: the next waits for this one (or gives it up as lost).
                try:
                    await asyncio.wait_for(arrivals[i].wait(), QUIET)
                except TimeoutError:
                    pass

    start = time.perf_counter()
    try:
        await asyncio.gather(*(raise_one(i) for i in range(n)))
        expected = n * len(consumers)
        while len(received) < expected:
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), QUIET)
            except TimeoutError:
                break  # silence: the rest are lost
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sub in subs:
            sub.close()
    return Delivery(n, received, max(last - start, 1e-9), n * len(consumers))
