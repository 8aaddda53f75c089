"""The proxy client's routing, gathering, discovery and subscription sharing (in-memory bus)."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.bus import BusMessage, MemoryBroker, MemoryTransport
from ari_proxy.client import ProxyBackend, ProxyClient
from ari_proxy.protocol import Key, Response, decode_request, encode_response
from ari_proxy.testing import wait_until

# The server tests' bounded wait, for state no event announces.

APP = "units"


class FakeProxy:
    """A proxy for one node that answers every request with `answer(kind, key)`."""

    def __init__(
        self, broker: MemoryBroker, node: str, answer: Callable[[str, Key], Response]
    ) -> None:
        self.node = node
        self.bus = broker.transport()
        self.answer = answer
        self.seen: list[tuple[str, str, Key]] = []  # (subject, kind, key)
        self.delay = 0.0

    async def start(self) -> None:
        await self.bus.connect()

        async def on_request(message: BusMessage) -> None:
            request = decode_request(message.data)
            key = request.key or Key()
            self.seen.append((message.subject, request.kind, key))
            if self.delay:
                await asyncio.sleep(self.delay)  # pacing: a slow proxy, for the timeouts
            reply = self.answer(request.kind, key)
            await self.bus.reply(message, encode_response(reply))

        async def on_ping(message: BusMessage) -> None:
            body = b'{"node":"%s","application":"%s"}' % (self.node.encode(), APP.encode())
            await self.bus.publish("ari.announce", body)

        for cls in ("get", "data", "command"):
            for subject in (f"ari.{cls}.{APP}", f"ari.{cls}.{APP}.{self.node}"):
                await self.bus.serve(subject, on_request)
        for subject in (f"ari.create.{APP}", f"ari.create.{APP}.{self.node}"):
            await self.bus.serve(subject, on_request, group="ariproxy")
        await self.bus.on_ping("ari.ping", on_ping)


def list_of(node: str, *ids: str) -> Response:
    return Response(keys=tuple(Key("channel", i, node, "", APP) for i in ids))


@pytest_asyncio.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    yield MemoryBroker()


async def client_on(broker: MemoryBroker, **options: object) -> ProxyClient:
    transport: MemoryTransport = broker.transport()
    await transport.connect()
    backend = ProxyBackend(transport, APP, timeout=1.0, **options)  # type: ignore[arg-type]
    await backend.start()
    return ProxyClient(backend, timeout=1.0)


async def test_gather_ends_when_every_live_proxy_answered(broker: MemoryBroker) -> None:
    proxies = [
        FakeProxy(broker, f"n{i}", lambda kind, key, i=i: list_of(f"n{i}", f"c{i}"))
        for i in range(3)
    ]
    for proxy in proxies:
        await proxy.start()
    client = await client_on(broker)
    try:
        assert len(client.nodes()) == 3
        started = time.monotonic()
        handles = await client.channels.list()
        assert time.monotonic() - started < 0.5  # not the 1 s window
        assert sorted((h.node, h.id) for h in handles) == [("n0", "c0"), ("n1", "c1"), ("n2", "c2")]
    finally:
        await client.close()


async def test_first_gather_waits_for_discovery_instead_of_an_incomplete_list(
    broker: MemoryBroker,
) -> None:
    # The client starts before any proxy: its map is empty.
    client = await client_on(broker, discovery_wait=0.5)
    try:
        assert client.nodes() == []
        proxies = [
            FakeProxy(broker, f"n{i}", lambda kind, key, i=i: list_of(f"n{i}", f"c{i}"))
            for i in range(2)
        ]
        for proxy in proxies:
            await proxy.start()
        proxies[1].delay = 0.1  # the second proxy answers later than the first
        handles = await client.channels.list()
        assert {h.node for h in handles} == {"n0", "n1"}
    finally:
        await client.close()


async def test_lists_merge_and_report_partial_failures(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    answers = {
        "n0": list_of("n0", "a", "b"),
        "n1": Response(error="Non-2XX response: 500 Internal Server Error", status=500),
        "n2": list_of("n2", "c"),
    }
    for node, reply in answers.items():
        await FakeProxy(broker, node, lambda kind, key, reply=reply: reply).start()
    client = await client_on(broker)
    try:
        handles = await client.channels.list()
        assert sorted(h.id for h in handles) == ["a", "b", "c"]
        assert "a proxy failed" in caplog.text
    finally:
        await client.close()


async def test_first_good_reply_wins_over_not_found_elsewhere(broker: MemoryBroker) -> None:
    not_found = Response(error="Non-2XX response: 404 Not Found", status=404)
    conflict = Response(error="Non-2XX response: 409 Conflict", status=409)
    await FakeProxy(broker, "n0", lambda kind, key: not_found).start()
    owner = FakeProxy(broker, "n1", lambda kind, key: Response())
    await owner.start()
    client = await client_on(broker)
    try:
        await client.channels.handle("x").answer()  # n0 says 404, n1 succeeds
        owner.answer = lambda kind, key: conflict
        # Both fail: the channel exists on n1 but is busy; that beats n0's "not found".
        with pytest.raises(ari_proxy.ConflictError):
            await client.channels.handle("x").answer()
    finally:
        await client.close()


async def test_routing(broker: MemoryBroker) -> None:
    proxies = [FakeProxy(broker, f"n{i}", lambda kind, key: Response(key=key)) for i in range(2)]
    for proxy in proxies:
        await proxy.start()
    client = await client_on(broker)
    try:
        # A key with a node: unicast to that node.
        await client.channels.handle("c1", node="n1").hangup()
        assert [s for s, *_ in proxies[1].seen] == [f"ari.command.{APP}.n1"]
        assert proxies[0].seen == []
        # A create without a node: the application's create subject, exactly one proxy.
        await client.channels.originate("Local/x")
        creates = [s for p in proxies for s, k, _ in p.seen if k == "ChannelOriginate"]
        assert creates == [f"ari.create.{APP}"]
        # A key without app gets the client's own (never every application's `ari.<class>`).
        for proxy in proxies:
            proxy.seen.clear()
        await client.request("ChannelAnswer", Key("channel", "c9"))
        assert {s for p in proxies for s, *_ in p.seen} == {f"ari.command.{APP}"}
        assert all(key.app == APP for p in proxies for *_, key in p.seen)
    finally:
        await client.close()


async def test_no_proxy_is_a_clear_error(broker: MemoryBroker) -> None:
    client = await client_on(broker, discovery_wait=0.1)
    try:
        with pytest.raises(ari_proxy.NoProxyError):
            await client.channels.list()
        with pytest.raises(ari_proxy.NoProxyError):
            await client.channels.handle("c", node="nowhere").answer()
    finally:
        await client.close()


async def test_one_bus_subscription_per_subject(broker: MemoryBroker) -> None:
    client = await client_on(broker)
    backend = client._backend
    try:
        subs = [await client.subscribe("StasisStart") for _ in range(100)]
        scoped = client.scoped("dialog-1")
        dialog_subs = [await scoped.subscribe() for _ in range(50)]
        assert backend.bus_subscriptions == 2  # the application's events, and dialog-1's
        for sub in subs + dialog_subs:
            sub.close()
        await wait_until(lambda: backend._reaper is not None and backend._reaper.done())
        assert backend.bus_subscriptions == 0
    finally:
        await client.close()


async def test_open_close_cycles_leak_nothing(broker: MemoryBroker) -> None:
    client = await client_on(broker)
    backend = client._backend

    async def cycle(i: int) -> None:
        child = client.scoped(f"d{i % 7}") if i % 2 else client.child()
        async with child.subscribe("ChannelDestroyed"):
            pass
        await child.subscribe("StasisStart")
        await child.close()

    for i in range(2000):  # warm up: caches and container capacities reach their size
        await cycle(i)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(10_000):
        await cycle(i)
    # The bus unsubscribes run in the background: measure once they are done.
    await wait_until(lambda: backend._reaper is None or backend._reaper.done())
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    try:
        assert client.subscriptions == 0
        assert client.hub.subscriptions == 0
        assert backend.bus_subscriptions == 0
        assert not client._children
        assert growth < 200_000, f"{growth} bytes kept after 10,000 cycles"
    finally:
        await client.close()


async def test_bus_gap_is_reported_to_subscriptions(broker: MemoryBroker) -> None:
    await FakeProxy(broker, "n0", lambda kind, key: Response()).start()
    client = await client_on(broker)
    try:
        app_events = await client.subscribe()
        dialog_events = await client.scoped("d-gap").subscribe()
        transport = client._backend.transport
        assert isinstance(transport, MemoryTransport)
        broker.cut(transport)
        await asyncio.sleep(0.05)  # pacing: the gap lasts a while (its duration is checked)
        broker.restore(transport)
        for sub in (app_events, dialog_events):
            gap = await sub.next(timeout=2)
            assert ari_proxy.event_type(gap) == "ConnectionGap"
            assert gap.source == "bus"  # type: ignore[attr-defined]
            assert gap.duration >= 0.04  # type: ignore[attr-defined]
        # The map is refreshed after the gap, and requests work again.
        await client.channels.handle("c", node="n0").answer()
    finally:
        await client.close()


async def test_per_call_timeout_and_retries(broker: MemoryBroker) -> None:
    slow = FakeProxy(broker, "n0", lambda kind, key: Response())
    await slow.start()
    client = await client_on(broker)
    try:
        slow.delay = 0.3
        hasty = client.with_options(timeout=0.1, retries=2)
        started = time.monotonic()
        with pytest.raises(ari_proxy.RequestTimeout):
            await hasty.channels.handle("c", node="n0").answer()
        assert 0.25 < time.monotonic() - started < 1.0
        assert len(slow.seen) == 3  # one try and two retries
        patient = client.with_options(timeout=2.0)
        await patient.channels.handle("c", node="n0").answer()  # the client's own default: 1 s
        assert hasty.timeout == 0.1 and client.timeout == 1.0
    finally:
        await client.close()
