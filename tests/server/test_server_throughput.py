"""Throughput through a real server, NATS and Asterisk (numbers printed with `-s`).

The floors asserted are far below what the 2-core test machine reaches; they catch a pipeline
that has become serial or blocking, not small regressions.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from nats.aio.client import Client as NatsClient
from server_helpers import originate, request, unicast

from ari_proxy.server import Server
from ari_proxy.testing import wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`

IN_FLIGHT = 32


async def _rate(nc: NatsClient, subject: str, body: bytes, total: int) -> float:
    """Requests per second with `IN_FLIGHT` outstanding at any time."""
    queue: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(None)
    errors: list[str] = []

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            reply = json.loads((await nc.request(subject, body, timeout=10)).data)
            if reply["error"]:
                errors.append(reply["error"])

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - began
    assert not errors, errors[:3]
    return total / elapsed


async def _offer(server: Server, frame: bytes, total: int) -> None:
    """Offer `total` frames as a WebSocket reader would, never overflowing the queue."""
    for _ in range(total):
        while server.publisher.queued >= 5000:
            await asyncio.sleep(0.001)  # pacing: offer no faster than the publisher drains
        server.publisher.offer(frame)


@pytest.mark.slow
async def test_request_and_event_rates(server: Server, nc: NatsClient, app_name: str) -> None:
    node = server.node
    data_subject = unicast("data", app_name, node)
    info_rate = await _rate(nc, data_subject, b'{"kind":"AsteriskInfo","key":{}}', 2000)
    channel = f"{app_name}-bench"
    reply = await request(
        nc,
        unicast("create", app_name, node),
        {"kind": "ChannelOriginate", "key": {}, "channel_originate": originate(app_name, channel)},
    )
    assert reply["error"] == ""
    body = json.dumps({"kind": "ChannelData", "key": {"kind": "channel", "id": channel}}).encode()
    data_rate = await _rate(nc, data_subject, body, 2000)
    await request(
        nc,
        unicast("command", app_name, node),
        {"kind": "ChannelHangup", "key": {"kind": "channel", "id": channel}},
    )
    # Events: ARI frames as Asterisk writes them, through the publisher onto NATS.
    frame = json.dumps(
        {
            "type": "ChannelVarset",
            "timestamp": "2026-01-01T00:00:00.000+0000",
            "variable": "X",
            "value": "1",
            "channel": {"id": "bench", "name": "PJSIP/1-0001", "state": "Up"},
            "asterisk_id": node,
            "application": app_name,
        }
    ).encode()
    total = 50_000
    published = server.counters.events_published
    began = time.perf_counter()
    await _offer(server, frame, total)
    await wait_until(lambda: server.counters.events_published >= published + total, timeout=60)
    event_rate = total / (time.perf_counter() - began)
    # The same with a dialog bound to the channel: every event is decoded and copied once.
    server.router.bind("bench-dialog", "channel", "bench")
    published = server.counters.dialog_events_published
    began = time.perf_counter()
    await _offer(server, frame, 20_000)
    await wait_until(
        lambda: server.counters.dialog_events_published >= published + 20_000, timeout=60
    )
    routed_rate = 20_000 / (time.perf_counter() - began)
    server.router.forget("channel", "bench")
    print(
        f"\nAsteriskInfo {info_rate:.0f} req/s, ChannelData {data_rate:.0f} req/s "
        f"({IN_FLIGHT} in flight); events {event_rate:.0f}/s, "
        f"events with a dialog copy {routed_rate:.0f}/s; dropped {server.counters.events_dropped}"
    )
    assert info_rate > 100 and data_rate > 100
    assert event_rate > 2000 and routed_rate > 1000
    assert server.counters.events_dropped == 0
