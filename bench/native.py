"""Native client vs raw aiohttp against the same Asterisk: what does the client add?

Both sides use one keep-alive aiohttp session with the same pool size; the raw side builds the
URL by hand and decodes the body with msgspec into the same model the client returns, so the
difference is the client's own work (kind table, key, encoding, error mapping).
"""

from __future__ import annotations

import aiohttp
import msgspec

import ari_proxy
from ari_proxy.ari.models import AsteriskInfo, Channel
from ari_proxy.testing import Instance

from ._stats import Sample, concurrent, ms, serial, table


async def run(inst: Instance, *, n: int = 2000, rounds: int = 4) -> str:
    app = "bench-native"
    info_decoder = msgspec.json.Decoder(AsteriskInfo)
    channel_decoder = msgspec.json.Decoder(Channel)
    headers = {"Authorization": aiohttp.encode_basic_auth(inst.username, inst.password)}
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=32)
    async with (
        aiohttp.ClientSession(headers=headers, connector=connector) as http,
        ari_proxy.connect(
            inst.http_url, application=app, username=inst.username, password=inst.password
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

        ops = {
            ("GET /asterisk/info", "raw aiohttp"): raw_info,
            ("GET /asterisk/info", "ari_proxy.ari"): client.asterisk.info,
            ("GET /channels/{id}", "raw aiohttp"): raw_channel,
            ("GET /channels/{id}", "ari_proxy.ari"): channel.data,
        }
        samples: dict[tuple[str, str, str], list[Sample]] = {}
        # Alternate the contenders in rounds so drift on a noisy machine hits both alike.
        for _ in range(rounds):
            for (what, who), op in ops.items():
                s = await serial(who, op, n // rounds)
                samples.setdefault((what, who, "serial"), []).append(s)
                c = await concurrent(who, op, n // rounds, in_flight=32)
                samples.setdefault((what, who, "32 in flight"), []).append(c)
        await channel.hangup()

    rows = []
    for (what, who, mode), parts in samples.items():
        merged = Sample(who, [x for p in parts for x in p.latencies], sum(p.wall for p in parts))
        base = samples[(what, "raw aiohttp", mode)]
        base_median = Sample("", [x for p in base for x in p.latencies], 1).median
        rows.append(
            [
                what,
                mode,
                who,
                ms(merged.median),
                ms(merged.percentile(0.99)),
                f"{merged.throughput:,.0f}",
                f"{merged.median / base_median:.2f}x",
            ]
        )
    header = ["request", "mode", "client", "median ms", "p99 ms", "req/s", "vs raw (median)"]
    return table("Native client vs raw aiohttp (same Asterisk, one run)", rows, header)
