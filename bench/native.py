"""Native client vs raw aiohttp against the same Asterisk: what does the client add?

Both sides use one keep-alive aiohttp session with the same pool size; the raw side builds the
URL by hand and decodes the body with msgspec into the same model the client returns, so the
difference is the client's own work (kind table, key, encoding, error mapping, deadlines).
Serial requests alternate one by one between the two, so drift on a noisy machine hits both
alike; concurrent runs alternate in short blocks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec

import ari_proxy
from ari_proxy.ari.models import AsteriskInfo, Channel
from ari_proxy.testing import Instance

from ._stats import Sample, concurrent, ms, table

Op = Callable[[], Awaitable[object]]


async def alternating(ops: dict[str, Op], n: int, warmup: int = 100) -> dict[str, Sample]:
    """Serial latencies, taking turns request by request (the order flips every round)."""
    names = list(ops)
    for _ in range(warmup):
        for name in names:
            await ops[name]()
    latencies: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for i in range(n):
        for name in names if i % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            await ops[name]()
            latencies[name].append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    # Each contender's share of the wall time is its own sum of latencies.
    return {name: Sample(name, lat, sum(lat) or wall) for name, lat in latencies.items()}


async def blocks(ops: dict[str, Op], n: int, rounds: int = 10) -> dict[str, Sample]:
    """32 in flight, in alternating blocks of n / rounds requests."""
    parts: dict[str, list[Sample]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            parts[name].append(await concurrent(name, op, n // rounds, in_flight=32, warmup=0))
    return {
        name: Sample(name, [x for p in ps for x in p.latencies], sum(p.wall for p in ps))
        for name, ps in parts.items()
    }


async def run(inst: Instance, *, n: int = 2000) -> str:
    app = "bench-native"
    info_decoder = msgspec.json.Decoder(AsteriskInfo)
    channel_decoder = msgspec.json.Decoder(Channel)
    headers = {"Authorization": aiohttp.encode_basic_auth(inst.username, inst.password)}
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=32)
    async with (
        aiohttp.ClientSession(headers=headers, connector=connector) as http,
        ari_proxy.connect(
            inst.http_url,
            application=app,
            username=inst.username,
            password=inst.password,
            transport="http",  # against raw aiohttp over HTTP (bench/transports.py: WebSocket)
        ) as client,
    ):
        staged = await client.channels.stage_originate("Local/wait@default")
        async with staged.subscribe("StasisStart") as started:
            channel = await staged.execute()
            await started.next(timeout=10)

        async def raw_info() -> object:
            async with http.get(f"{inst.http_url}/asterisk/info") as resp:
                return info_decoder.decode(await resp.read())

        async def raw_channel() -> object:
            async with http.get(f"{inst.http_url}/channels/{channel.id}") as resp:
                return channel_decoder.decode(await resp.read())

        contests = {
            "GET /asterisk/info": {"raw aiohttp": raw_info, "ari_proxy.ari": client.asterisk.info},
            "GET /channels/{id}": {"raw aiohttp": raw_channel, "ari_proxy.ari": channel.data},
        }
        rows = []
        for what, ops in contests.items():
            for mode, samples in (
                ("serial", await alternating(ops, n)),
                ("32 in flight", await blocks(ops, n)),
            ):
                base = samples["raw aiohttp"].median
                for who, s in samples.items():
                    rows.append(
                        [
                            what,
                            mode,
                            who,
                            ms(s.median),
                            ms(s.percentile(0.99)),
                            f"{s.throughput:,.0f}",
                            f"{s.median / base:.2f}x",
                        ]
                    )
        await channel.hangup()
    header = ["request", "mode", "client", "median ms", "p99 ms", "req/s", "vs raw (median)"]
    return table("Native client vs raw aiohttp (same Asterisk, one run)", rows, header)
