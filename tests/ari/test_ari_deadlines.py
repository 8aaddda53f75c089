"""Per-request deadlines: one sweeper instead of a timer per request."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_proxy.ari._http import Deadlines


async def test_a_late_request_times_out_and_the_task_goes_on() -> None:
    deadlines = Deadlines(resolution=0.01)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with deadlines.within(0.05):
            await asyncio.sleep(5)  # a request that takes too long
    assert 0.04 < time.monotonic() - started < 0.5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # not left half-cancelled
    await asyncio.sleep(0.02)  # and it can keep working (awaiting is the check)
    deadlines.close()


async def test_a_quick_request_is_untouched() -> None:
    deadlines = Deadlines(resolution=0.01)
    with deadlines.within(1.0):
        await asyncio.sleep(0.01)  # a request well within its deadline
    assert not deadlines._due
    deadlines.close()


async def test_an_outside_cancel_stays_a_cancel() -> None:
    deadlines = Deadlines(resolution=0.01)

    inside = asyncio.Event()

    async def request() -> None:
        with deadlines.within(10):
            inside.set()
            await asyncio.sleep(5)  # a long request

    task = asyncio.create_task(request())
    await inside.wait()  # cancelled under its deadline, not before it began
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()


async def test_many_requests_share_one_sweeper() -> None:
    deadlines = Deadlines(resolution=0.01)

    async def request(seconds: float) -> str:
        try:
            with deadlines.within(0.05):
                await asyncio.sleep(seconds)  # a quick or a too-long request
            return "done"
        except TimeoutError:
            return "timeout"

    results = await asyncio.gather(*(request(0.01 if i % 2 else 1.0) for i in range(100)))
    assert results.count("done") == 50 and results.count("timeout") == 50
    deadlines.close()
