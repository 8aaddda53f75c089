"""The proxy client's counters (`ProxyClient.metrics()`) and the optional Prometheus adapter
(`ari_proxy.client.prometheus_collector`), over the in-memory bus with a real server in front of
`FakeAri`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import ari_proxy
from ari_proxy.bus import BusMessage, MemoryBroker, MemoryTransport
from ari_proxy.client import (
    OUTCOMES,
    ClientStats,
    ProxyBackend,
    ProxyClient,
    prometheus_collector,
)
from ari_proxy.client._metrics import ClientMetrics, outcome_of
from ari_proxy.protocol import Key
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import wait_until
from ari_proxy.testing._fake_ari import FakeAri

APP = "app"


@contextlib.asynccontextmanager
async def stack(
    **options: float,
) -> AsyncIterator[tuple[ProxyClient, Server, FakeAri, MemoryBroker, MemoryTransport]]:
    """A server on FakeAri and the memory bus, and a proxy client on the same broker."""
    async with FakeAri() as fake:
        broker = MemoryBroker()
        server_bus, transport = broker.transport(), broker.transport()
        await server_bus.connect()
        await transport.connect()
        config = ServerConfig(
            applications=(APP,),
            ari_username=fake.username,
            ari_password=fake.password,
            ari_http_url=fake.http_url,
            shutdown_grace=1.0,
        )
        async with Server(config, bus=server_bus) as server:
            backend = ProxyBackend(transport, APP, timeout=2.0, **options)  # type: ignore[arg-type]
            await backend.start()
            client = ProxyClient(backend, timeout=2.0)
            try:
                yield client, server, fake, broker, transport
            finally:
                await client.close()
        await server_bus.close()


def test_outcomes_name_every_failure() -> None:
    assert outcome_of(ari_proxy.RequestTimeout("x")) == "timeout"
    assert outcome_of(TimeoutError()) == "timeout"
    assert outcome_of(ari_proxy.NoProxyError("x")) == "no_proxy"
    assert outcome_of(ari_proxy.NotFoundError("x")) == "not_found"
    assert outcome_of(ari_proxy.InvalidRequestError("x")) == "bad_request"
    assert outcome_of(ari_proxy.ServiceUnavailableError("x")) == "ari_error"
    assert outcome_of(ari_proxy.ConnectionDownError("x")) == "ari_down"
    assert outcome_of(ari_proxy.UnknownKindError("x")) == "not_implemented"
    assert outcome_of(ari_proxy.ClientClosedError("x")) == "closed"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(ValueError("x")) == "error"
    for exc in (ari_proxy.ConnectError("x"), ari_proxy.TooLargeError("x"), RuntimeError()):
        assert outcome_of(exc) in OUTCOMES


def test_unknown_kinds_share_one_entry() -> None:
    metrics = ClientMetrics()
    for n in range(100):
        metrics.failed(f"Made-Up-{n}", ari_proxy.UnknownKindError("x"))
    metrics.succeeded("AsteriskInfo")
    assert metrics.requests == {"unknown": {"not_implemented": 100}, "AsteriskInfo": {"ok": 1}}


async def test_client_counts_requests_events_gaps_and_reconnects() -> None:
    async with stack(retries=1) as (client, server, fake, broker, transport):
        assert client.metrics() == ClientStats(
            application=APP,
            requests={},
            requests_total=0,
            timeouts=0,
            retries=0,
            events_received=0,
            dialog_events_received=0,
            bad_events=0,
            events_delivered=0,
            events_dropped=0,
            gaps=0,
            bus_reconnects=0,
            bus_down_seconds=0.0,
            bus_connected=True,
            bus_subscriptions=0,
            subscriptions=0,
            nodes=1,
        )
        # Requests: two answered, one refused by Asterisk, one that never gets an answer (a
        # proxy that is silent: timed out, retried once), one of a kind nobody implements.
        for _ in range(2):
            await client.asterisk.info()
        with pytest.raises(ari_proxy.NotFoundError):
            await client.mailboxes.get("nobody")
        silent = await transport.subscribe("ari.data.app.02:00:00:00:00:99", lambda m: None)
        with pytest.raises(ari_proxy.RequestTimeout):
            await client.request("AsteriskInfo", Key(node="02:00:00:00:00:99"), timeout=0.1)
        await silent.unsubscribe()
        with pytest.raises(ari_proxy.UnknownKindError):
            await client.request("NoSuchKind", None)  # type: ignore[arg-type]
        # Events: a subscription that holds one event; three arrive, two are dropped.
        subscription = await client.subscribe(maxsize=1)
        for n in range(3):
            await fake.push({"type": "ChannelVarset", "application": APP, "variable": f"v{n}"})
        await wait_until(lambda: client.metrics().events_received == 3)
        # The server's ARI drops: the clients get a ConnectionGap.
        await fake.drop_websockets()
        await wait_until(lambda: client.metrics().gaps == 1, timeout=15)
        # The client's bus link drops and comes back.
        broker.cut(transport)
        await wait_until(lambda: not client.metrics().bus_connected)
        broker.restore(transport)
        stats = client.metrics()
        assert stats.requests == {
            "AsteriskInfo": {"ok": 2, "timeout": 1},
            "MailboxGet": {"not_found": 1},
            "unknown": {"not_implemented": 1},
        }
        assert stats.requests_total == 5
        assert stats.timeouts == 1 and stats.retries == 1
        assert stats.events_received == 4  # three events and the gap
        assert stats.events_delivered >= 4  # and the bus gap, reported locally
        # On the full queue: two events, the server's gap, and the bus gap (reported locally).
        assert stats.events_dropped == subscription.dropped >= 4
        assert stats.bus_reconnects == 1 and stats.bus_down_seconds > 0 and stats.bus_connected
        assert stats.bus_subscriptions == 1 and stats.subscriptions == 1 and stats.nodes == 1
        json.dumps(stats.as_dict())  # plain data
        # A scoped (child) client shares the connection, hence the counters.
        await client.scoped("d1").asterisk.info()
        assert client.metrics().requests["AsteriskInfo"]["ok"] == 3
        assert server.counters.requests >= 4


async def test_prometheus_collector() -> None:
    async with stack() as (client, _, _, _, _):
        await client.asterisk.info()
        with pytest.raises(ari_proxy.NotFoundError):
            await client.mailboxes.get("nobody")
        registry = CollectorRegistry()
        registry.register(prometheus_collector(client))
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
        }
        requests = "ari_proxy_client_requests_total"
        ok = (("application", APP), ("kind", "AsteriskInfo"), ("outcome", "ok"))
        not_found = (("application", APP), ("kind", "MailboxGet"), ("outcome", "not_found"))
        assert samples[(requests, ok)] == 1
        assert samples[(requests, not_found)] == 1
        app = (("application", APP),)
        assert samples[("ari_proxy_client_bus_connected", app)] == 1
        assert samples[("ari_proxy_client_nodes", app)] == 1
        for name in ("events_received", "events_dropped", "gaps", "bus_reconnects"):
            assert samples[(f"ari_proxy_client_{name}_total", app)] == 0, name
    with pytest.raises(ValueError, match="at least one client"):
        prometheus_collector()


def test_the_client_needs_no_prometheus() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if it were not installed\n"
        "import ari_proxy, ari_proxy.client\n"
        "from ari_proxy.client import ClientStats, prometheus_collector\n"
        "try:\n"
        "    prometheus_collector(object())\n"
        "except ImportError:\n"
        "    print('lazy')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "lazy", result.stderr


async def test_cancelled_requests_are_counted() -> None:
    async with stack() as (client, _, _, _, transport):
        # A node whose proxy never answers: the request waits until cancelled.
        silent_node = "02:00:00:00:00:98"
        arrived = asyncio.Event()

        def never_answer(message: BusMessage) -> None:
            arrived.set()

        silent = await transport.subscribe(f"ari.data.app.{silent_node}", never_answer)
        task = asyncio.get_running_loop().create_task(
            client.request("AsteriskInfo", Key(node=silent_node), timeout=30)
        )
        await asyncio.wait_for(arrived.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await silent.unsubscribe()
        assert client.metrics().requests == {"AsteriskInfo": {"cancelled": 1}}


def test_operations_doc_lists_every_client_counter() -> None:
    from dataclasses import fields
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs/operations.md").read_text()
    for field in fields(ClientStats):
        if field.name != "application":
            assert f"`{field.name}`" in text, field.name
    for outcome in OUTCOMES:
        assert f"`{outcome}`" in text, outcome
