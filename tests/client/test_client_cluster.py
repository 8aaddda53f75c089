"""The proxy client in a cluster: two Asterisk nodes, a proxy on each, several client instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import pytest

import ari_proxy
from ari_proxy.client import ProxyClient
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance, sipp_calls

logger = logging.getLogger(__name__)


def config(inst: Instance, bus_url: str, app: str) -> ServerConfig:
    return ServerConfig(
        applications=(app,),
        ari_username=inst.username,
        ari_password=inst.password,
        ari_http_url=inst.http_url,
        bus_urls=(bus_url,),
        shutdown_grace=3.0,
        announce_interval=1.0,
    )


@contextlib.asynccontextmanager
async def proxies(bus_url: str, app: str, *instances: Instance) -> AsyncIterator[list[Server]]:
    servers = [Server(config(inst, bus_url, app)) for inst in instances]
    for server in servers:
        await server.start(ari_timeout=30)
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def connect(bus_url: str, app: str, **options: object) -> ProxyClient:
    client = await ari_proxy.connect(bus_url, application=app, timeout=5.0, **options)  # type: ignore[arg-type]
    assert isinstance(client, ProxyClient)
    return client


@pytest.mark.parametrize("bus", ["nats", "rabbitmq"])
async def test_listen_spreads_100_calls_over_4_instances(
    bus: str,
    asterisk: Instance,
    asterisk2: Instance,
    nats_url: str,
    rabbitmq_url: str,
    app_name: str,
) -> None:
    bus_url = nats_url if bus == "nats" else rabbitmq_url
    local_calls, sip_calls = 90, 10
    # A call is (node, channel ID): two Asterisk nodes can hand out the same uniqueid.
    handled: dict[str, list[tuple[str, str]]] = {}

    async def instance(name: str, client: ProxyClient, ready: asyncio.Event) -> None:
        handled[name] = []
        async with client.listen() as calls:
            ready.set()
            async for call in calls:
                # Control the call through whichever node owns it.
                await call.channel.answer()
                await call.channel.set_variable("HANDLED_BY", name)
                assert await call.channel.get_variable("HANDLED_BY") == name
                handled[name].append((call.channel.node, call.channel.id))
                await call.channel.hangup()
                await call.close()

    async with proxies(bus_url, app_name, asterisk, asterisk2):
        clients = [await connect(bus_url, app_name) for _ in range(4)]
        driver = await connect(bus_url, app_name)
        try:
            async with asyncio.timeout(10):
                while len(driver.nodes()) < 2:
                    await asyncio.sleep(0.05)
            assert {n.node for n in driver.nodes()} == {asterisk.entity_id, asterisk2.entity_id}
            readiness = [asyncio.Event() for _ in clients]
            tasks = [
                asyncio.create_task(instance(f"i{n}", c, r))
                for n, (c, r) in enumerate(zip(clients, readiness, strict=True))
            ]
            await asyncio.gather(*(r.wait() for r in readiness))
            nodes = [asterisk.entity_id, asterisk2.entity_id]

            async def place(i: int) -> tuple[str, str]:
                channel = await driver.channels.originate("Local/wait@default", node=nodes[i % 2])
                return (channel.node, channel.id)

            async with asyncio.timeout(90):
                placed: list[tuple[str, str]] = []
                for batch in range(0, local_calls, 10):
                    placed += await asyncio.gather(*(place(i) for i in range(batch, batch + 10)))
                sip = await asyncio.gather(
                    sipp_calls(asterisk, f"stasis-{app_name}", calls=sip_calls // 2),
                    sipp_calls(asterisk2, f"stasis-{app_name}", calls=sip_calls // 2),
                )
                assert [r.successful for r in sip] == [sip_calls // 2] * 2, sip[0].output
                while sum(len(v) for v in handled.values()) < local_calls + sip_calls:
                    await asyncio.sleep(0.05)
            all_handled = [cid for ids in handled.values() for cid in ids]
            # Every call handled exactly once, none lost.
            assert len(all_handled) == len(set(all_handled)) == local_calls + sip_calls
            assert set(placed) <= set(all_handled)
            assert all(len(ids) > 0 for ids in handled.values()), handled
            received = {f"i{n}": c._backend.events_received for n, c in enumerate(clients)}
            shares = Counter({k: len(v) for k, v in handled.items()})
            logger.warning(
                "calls per instance %s, events received per instance %s", shares, received
            )
            for n, client in enumerate(clients):
                # An instance receives its calls' events (on their dialogs) and the StasisStart
                # of each call it takes, nothing of anybody else's calls (Go's listen hands
                # every instance every event).
                backend = client._backend
                foreign = backend.events_received - backend.dialog_events_received
                assert foreign <= shares[f"i{n}"] + 2, (n, foreign, shares, received)
            for task in tasks:
                task.cancel()
        finally:
            for client in [*clients, driver]:
                await client.close()
