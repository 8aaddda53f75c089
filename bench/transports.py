"""REST over HTTP against REST over the events WebSocket (`transport="websocket"`), side by side:
the native client, and through the proxy (two servers on the same Asterisk, one per
`ari.transport`, each with its own application and prefix, over NATS). Serial requests alternate
one by one between the two, concurrent ones in alternating blocks (`native.alternating`,
`native.blocks`), so drift on a noisy machine hits both alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import ari_proxy
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance

from ._stats import Sample, ms, table
from .native import alternating, blocks

Op = Callable[[], Awaitable[object]]
TRANSPORTS = ("http", "websocket")


@asynccontextmanager
async def proxied(inst: Instance, bus_url: str, transport: str) -> AsyncIterator[ari_proxy.Client]:
    app, prefix = f"bench-{transport}", f"bench{transport}."
    config = ServerConfig(
        applications=(app,),
        ari_username=inst.username,
        ari_password=inst.password,
        ari_http_url=inst.http_url,
        ari_transport=transport,
        bus_urls=(bus_url,),
        prefix=prefix,
        max_inflight=1024,
    )
    server = Server(config)
    await server.start(ari_timeout=30)
    try:
        async with ari_proxy.connect(bus_url, application=app, prefix=prefix, timeout=10) as c:
            yield c
    finally:
        await server.stop()


async def _contests(
    clients: dict[str, ari_proxy.Client], channels: dict[str, ari_proxy.ChannelHandle]
) -> dict[str, dict[str, Op]]:
    """The same requests through each client: reads of a call in the application (kept in
    `channels`), and a call set up and torn down."""
    for name, client in clients.items():
        staged = await client.channels.stage_originate("Local/wait@default")
        async with staged.subscribe("StasisStart") as started:
            channels[name] = await staged.execute()
            await started.next(timeout=10)

    def info(client: ari_proxy.Client, node: str) -> Op:
        return lambda: client.asterisk.info(node=node or None)

    def originate_hangup(client: ari_proxy.Client, node: str) -> Op:
        async def op() -> None:
            channel = await client.channels.originate("Local/wait@default", node=node or None)
            await channel.hangup()

        return op

    return {
        "GET /asterisk/info": {n: info(c, channels[n].node) for n, c in clients.items()},
        "GET /channels/{id}": {n: channels[n].data for n in clients},
        "originate + hangup": {
            n: originate_hangup(c, channels[n].node) for n, c in clients.items()
        },
    }


def _rows(path: str, what: str, mode: str, samples: dict[str, Sample]) -> list[list[str]]:
    base = samples["http"].median
    return [
        [
            what,
            path,
            mode,
            who,
            ms(s.median),
            ms(s.percentile(0.99)),
            f"{s.throughput:,.0f}",
            f"{s.median / base:.2f}x",
        ]
        for who, s in samples.items()
    ]


async def _measure(path: str, clients: dict[str, ari_proxy.Client], n: int) -> list[list[str]]:
    rows = []
    channels: dict[str, ari_proxy.ChannelHandle] = {}
    try:
        for what, ops in (await _contests(clients, channels)).items():
            calls = what.startswith("originate")
            count = max(100, n // 10) if calls else n
            rows += _rows(path, what, "serial", await alternating(ops, count, warmup=20))
            if not calls:
                rows += _rows(path, what, "32 in flight", await blocks(ops, n))
    finally:
        for channel in channels.values():
            await channel.hangup()
    return rows


async def run(inst: Instance, nats_url: str, *, n: int = 2000) -> str:
    async with AsyncExitStack() as stack:
        native = {
            t: await stack.enter_async_context(
                ari_proxy.connect(
                    inst.http_url,
                    application=f"bench-native-{t}",
                    username=inst.username,
                    password=inst.password,
                    transport=t,
                )
            )
            for t in TRANSPORTS
        }
        rows = await _measure("native", native, n)
        through = {
            t: await stack.enter_async_context(proxied(inst, nats_url, t)) for t in TRANSPORTS
        }
        rows += await _measure("proxy (NATS)", through, n)
    header = ["request", "path", "mode", "transport", "median ms", "p99 ms", "req/s", "vs http"]
    return table("REST over HTTP and over the WebSocket (same Asterisk, one run)", rows, header)
