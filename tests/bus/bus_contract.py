"""Behaviour every transport must show, written once and run by each backend's tests."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_proxy._exceptions import ClientClosedError
from ari_proxy.bus import BusMessage, BusState, Transport


async def close_drains_handlers_and_fails_pending_requests(
    server: Transport, client: Transport, requests: str, events: str, settle: float
) -> None:
    """`close()` waits for running handlers (their replies still go out), is idempotent,
    refuses later use, and fails the requests and gathers still pending, promptly.

    `requests` is a subject prefix that reaches `serve`, `events` one for publish/subscribe.
    """
    states: list[BusState] = []
    server.on_state(states.append)
    entered = asyncio.Event()

    async def slow_answer(message: BusMessage) -> None:
        entered.set()
        await asyncio.sleep(0.2)
        await server.reply(message, b"late but delivered")

    await server.serve(f"{requests}.slow", slow_answer)
    answered = asyncio.ensure_future(client.request(f"{requests}.slow", b"", timeout=5))
    await entered.wait()
    await server.close()  # waits for the handler, whose reply still goes out
    assert await answered == b"late but delivered"
    assert server.state is BusState.CLOSED and states == [BusState.CLOSED]
    await server.close()  # idempotent
    with pytest.raises(ClientClosedError):
        await server.publish(f"{events}.x", b"")
    with pytest.raises(ClientClosedError):
        await server.subscribe(f"{events}.x", print)

    await client.serve(f"{requests}.never", lambda message: None)
    pending = asyncio.ensure_future(client.request(f"{requests}.never", b"", timeout=10))
    gathering = asyncio.ensure_future(
        client.gather(f"{requests}.never", b"", timeout=10, enough=lambda r: False)
    )
    await asyncio.sleep(settle)
    started = time.monotonic()
    await client.close()
    with pytest.raises(ClientClosedError):
        await pending
    with pytest.raises(ClientClosedError):
        await gathering
    assert time.monotonic() - started < 2
