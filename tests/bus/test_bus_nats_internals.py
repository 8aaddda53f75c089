"""What the NATS transport relies on in nats-py beyond its documented API, checked by name and
by effect, against a real NATS server.

`ari_proxy/bus/_nats_fast.py` hands a subscription's messages to our callback in nats-py's
reader task (replacing the subscription's queue) and writes a publish straight to the socket
when nothing is pending (instead of waking nats-py's flusher task). pyproject.toml pins nats-py
to the versions tested; when a new one no longer fits, these fail naming what changed. Fix
`_nats_fast.py` (both fall back to nats-py's own path when a name is missing), run tests/bus,
tests/server and tests/interop, then widen the pin.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from collections.abc import AsyncIterator, Callable

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ari_proxy.bus import BusMessage, NatsTransport
from ari_proxy.bus._nats_fast import _InlineQueue, deliver_inline, write_now
from ari_proxy.testing import wait_until

VERSION = importlib.metadata.version("nats-py")
WHO = f"nats-py {VERSION}: ari_proxy/bus/_nats_fast.py relies on"


@pytest.mark.parametrize(
    ("function", "needed"),
    [
        (NatsClient._process_msg, "sub._pending_size += payload_size"),
        (NatsClient._process_msg, "sub._pending_queue.put_nowait(msg)"),
        (Subscription._drain, "self._pending_queue.join()"),
        (NatsClient._flusher, "self._pending_data_size > 0"),
        (NatsClient._flusher, "self._transport.writelines(self._pending"),
        (NatsClient._send_command, "self._pending.append(cmd)"),
    ],
)
def test_what_the_shortcuts_rely_on(function: Callable[..., object], needed: str) -> None:
    assert needed in inspect.getsource(function), f"{WHO} {function.__qualname__} `{needed}`"


async def test_messages_go_inline_and_the_subscription_task_ends(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: list[tuple[bytes, asyncio.Task[object] | None]] = []

        async def fallback(msg: Msg) -> None:
            raise AssertionError("nats-py's subscription task delivered a message")

        sub = await nc.subscribe("fast.inline", cb=fallback)
        task = sub._wait_for_msgs_task
        assert deliver_inline(sub, lambda msg: got.append((msg.data, asyncio.current_task())))
        assert isinstance(sub._pending_queue, _InlineQueue)
        for i in range(3):
            await nc.publish("fast.inline", b"m%d" % i)
        await nc.flush()
        await wait_until(lambda: len(got) == 3, timeout=5)
        assert [data for data, _ in got] == [b"m0", b"m1", b"m2"]
        assert {t for _, t in got} == {nc._reading_task}, f"{WHO} Client._reading_task"
        assert task is not None and task.done(), "nats-py's subscription task still runs"
        assert sub._pending_size == 0 and sub.pending_msgs == 0
        await sub.drain()  # joins the (always empty) queue at once
    finally:
        await nc.close()


async def test_write_now_writes_only_when_nothing_is_pending(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: list[bytes] = []

        async def on_message(msg: Msg) -> None:
            got.append(msg.data)

        await nc.subscribe("fast.write", cb=on_message)
        await nc.flush()
        assert not nc._pending, f"{WHO} Client._pending empty after a flush"
        out = nc.stats["out_msgs"]
        assert write_now(nc, "fast.write", "", b"now")
        assert nc.stats["out_msgs"] == out + 1
        nc._pending.append(b"PING\r\n")  # something queued for the flusher: keep the order
        assert not write_now(nc, "fast.write", "", b"later")
        nc._pending.clear()
        await nc.publish("fast.write", b"published")
        await nc.flush()
        await wait_until(lambda: got == [b"now", b"published"], timeout=5)
    finally:
        await nc.close()
    assert not write_now(nc, "fast.write", "", b"closed")


@pytest.fixture
async def pair(nats_url: str) -> AsyncIterator[tuple[NatsTransport, NatsTransport]]:
    """A server's transport and a client's, connected."""
    server = NatsTransport([nats_url])
    client = NatsTransport([nats_url])
    await server.connect()
    await client.connect()
    try:
        yield server, client
    finally:
        await client.close()
        await server.close()


async def test_the_transport_serves_and_replies_on_the_fast_path(
    pair: tuple[NatsTransport, NatsTransport],
) -> None:
    server, client = pair
    handled: list[asyncio.Task[object] | None] = []

    async def echo(message: BusMessage) -> None:
        handled.append(asyncio.current_task())
        await server.reply(message, message.data.upper())

    sub = await server.serve("fast.echo", echo)
    # Requests are delivered by nats-py's subscription task, replies inline.
    assert not isinstance(sub.nats_sub._pending_queue, _InlineQueue)
    for i in range(5):  # one at a time: each request written at once (`write_now`)
        assert await client.request("fast.echo", b"s%d" % i, timeout=5) == b"S%d" % i
    inbox = next(s for s in client._subs if s.raw is not None)
    assert isinstance(inbox.nats_sub._pending_queue, _InlineQueue)
    replies = await asyncio.gather(
        *(client.request("fast.echo", b"r%d" % i, timeout=5) for i in range(50))
    )
    assert replies == [b"R%d" % i for i in range(50)]
    assert len(handled) == 55


async def test_requests_share_one_inbox_that_survives_a_new_connection(
    pair: tuple[NatsTransport, NatsTransport],
) -> None:
    server, client = pair
    await server.serve("fast.inbox", lambda m: server.reply(m, m.reply.encode()))
    first = await client.request("fast.inbox", b"", timeout=5)
    second = await client.request("fast.inbox", b"", timeout=5)
    prefix = client._reply_prefix
    assert first.decode().startswith(prefix) and second.decode().startswith(prefix)
    assert first != second and not client._replies  # each request's entry is gone
    old = client._link.nc
    assert old is not None
    await old.close()  # as nats-py does after a fatal server error: a new connection
    await wait_until(lambda: client._link.nc not in (None, old), timeout=10)
    again = await client.request("fast.inbox", b"", timeout=5)
    assert again.decode().startswith(prefix)
