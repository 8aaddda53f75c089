"""Call setup through `listen()`: from the originate's answer to the `Call` in the application.

One proxy, one instance in `listen()`, calls originated one at a time straight through ARI. The
time covers the StasisStart's trip through the proxy and the bus, and the take (the round trip
that makes the call this instance's and binds its dialog).
"""

from __future__ import annotations

import time

import ari_proxy
from ari_proxy.testing import Instance, running_proxy

from ._stats import Sample, ms, table

APP = "bench-setup"


async def run(inst: Instance, bus_url: str, n: int = 200) -> str:
    latencies = []
    async with running_proxy(inst, bus_url, APP):
        async with ari_proxy.connect(bus_url, application=APP, timeout=5) as client:
            async with ari_proxy.connect(
                inst.http_url,
                application=f"{APP}-source",
                username=inst.username,
                password=inst.password,
            ) as source:
                async with client.listen() as calls:
                    started = time.perf_counter()
                    for _ in range(n + 5):
                        placed = await source.channels.originate("Local/wait@default", app=APP)
                        started = time.perf_counter()
                        async with await calls.next(timeout=10) as call:
                            latencies.append(time.perf_counter() - started)
                            assert call.channel.id == placed.id
                        await placed.hangup()
    sample = Sample("listen", latencies[5:], wall=sum(latencies[5:]))
    row = [bus_url.split(":")[0], str(len(latencies) - 5)]
    row += [ms(sample.median), ms(sample.percentile(0.99))]
    return table(
        "Call setup through listen(): originate answered -> Call in the application",
        [row],
        ["bus", "calls", "median ms", "p99 ms"],
    )
