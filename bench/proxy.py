"""The proxy client next to the native client: request latency and throughput, originate and
hangup, and event delivery (ARI WebSocket to application) with 1 and 4 subscribed instances,
over NATS and RabbitMQ, against the same Asterisk in one run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import ari_proxy
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance, ensure_rabbitmq

from ._events import deliver
from ._stats import concurrent, ms, serial, table

APP = "bench-proxy"


@asynccontextmanager
async def proxy_stack(inst: Instance, bus_url: str) -> AsyncIterator[ari_proxy.Client]:
    config = ServerConfig(
        applications=(APP,),
        ari_username=inst.username,
        ari_password=inst.password,
        ari_http_url=inst.http_url,
        ari_transport="http",  # as the rows were measured (bench/transports.py: WebSocket)
        bus_urls=(bus_url,),
        prefix="bench.",
        max_inflight=1024,
    )
    server = Server(config)
    await server.start(ari_timeout=30)
    try:
        async with ari_proxy.connect(bus_url, application=APP, prefix="bench.", timeout=10) as c:
            yield c
    finally:
        await server.stop()


async def channel_in_stasis(client: ari_proxy.Client) -> ari_proxy.ChannelHandle:
    staged = await client.channels.stage_originate("Local/wait@default")
    async with staged.subscribe("StasisStart") as started:
        channel = await staged.execute()
        await started.next(timeout=10)
    return channel


async def requests(name: str, client: ari_proxy.Client, n: int) -> list[list[str]]:
    channel = await channel_in_stasis(client)
    node = channel.node
    ops: dict[str, Callable[[], Awaitable[object]]] = {
        "AsteriskInfo (unicast)": lambda: client.asterisk.info(node=node),
        "ChannelData": channel.data,
    }
    rows = []
    for what, op in ops.items():
        s = await serial(name, op, n)
        c = await concurrent(name, op, n, in_flight=32)
        rows.append([what, name, ms(s.median), ms(s.percentile(0.99)), f"{c.throughput:,.0f}"])

    async def originate_hangup() -> None:
        ch = await client.channels.originate("Local/wait@default", node=node)
        await ch.hangup()

    s = await serial(name, originate_hangup, max(50, n // 10), warmup=5)
    rows.append(
        ["originate + hangup", name, ms(s.median), ms(s.percentile(0.99)), f"{s.throughput:,.0f}"]
    )
    await channel.hangup()
    return rows


async def events(
    name: str, producer: ari_proxy.Client, consumers: list[ari_proxy.Client], n: int
) -> list[str]:
    """Raise `n` user events through `producer`; every consumer subscribes to all of them."""
    got = await deliver(producer, consumers, n)
    if got.lost:
        raise RuntimeError(f"{name}: {got.lost} of {got.expected} deliveries lost")
    return [
        name,
        str(len(consumers)),
        f"{got.rate:,.0f}",
        ms(got.sample.median),
        ms(got.sample.percentile(0.99)),
    ]


async def run(inst: Instance, inst2: Instance, nats_url: str, *, n: int = 2000) -> str:
    del inst2  # one node is enough for these numbers
    rabbit = ensure_rabbitmq()
    request_rows: list[list[str]] = []
    event_rows: list[list[str]] = []
    n_events = max(200, n // 2)
    async with ari_proxy.connect(
        inst.http_url,
        application=APP,
        username=inst.username,
        password=inst.password,
        transport="http",
    ) as native:
        request_rows += await requests("native (HTTP)", native, n)
        event_rows.append(await events("native (WebSocket)", native, [native], n_events))
        for bus, url in (("NATS", nats_url), ("RabbitMQ", rabbit)):
            async with proxy_stack(inst, url) as proxied:
                request_rows += await requests(f"proxy over {bus}", proxied, n)
                event_rows.append(await events(f"proxy over {bus}", native, [proxied], n_events))
                extra = [
                    await ari_proxy.connect(url, application=APP, prefix="bench.") for _ in range(3)
                ]
                try:
                    event_rows.append(
                        await events(f"proxy over {bus}", native, [proxied, *extra], n_events)
                    )
                finally:
                    for client in extra:
                        await client.close()
    request_rows.sort(key=lambda r: r[0])
    return "\n\n".join(
        [
            table(
                "Requests: native and proxied, same Asterisk, one run",
                request_rows,
                ["request", "client", "serial median ms", "serial p99 ms", "req/s (32 in flight)"],
            ),
            table(
                f"Event delivery: {n_events} user events, ARI WebSocket to application",
                event_rows,
                ["path", "subscribed instances", "events/s delivered", "median ms", "p99 ms"],
            ),
        ]
    )
