"""Event delivery, the Go server beside ours: the same user events raised in Asterisk, received
by the same subscriber (our proxy client), in alternating rounds.

`python -m bench go` prints these tables after the request tables (and, like them, one line
instead when the Go binaries are missing). Each round starts one server at a time beside the
same Asterisk; a native ARI client on its own application raises user events for the served
application, 32 in flight ("burst": delivered events per second, lost, latency from the raise to
the subscriber) and then one at a time (each waits for the last: the latency of one event
through an idle server). Figures are medians over rounds; the ratios are ours over Go's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import ari_proxy
from ari_proxy.testing import GoReference, Instance, NatsCluster, ensure_rabbitmq

from ._events import deliver
from ._servers import OurServer, Served
from ._stats import table

APP = "bench-goevents"
IN_FLIGHT = 32

Figures = dict[str, float]


async def _round(start: Callable[[], Served], inst: Instance, bus_url: str, n: int) -> Figures:
    server = start()
    try:
        await server.ready(timeout=30)
        async with (
            ari_proxy.connect(
                inst.http_url,
                application=f"{APP}-source",
                username=inst.username,
                password=inst.password,
            ) as producer,
            ari_proxy.connect(bus_url, application=APP, timeout=5.0) as consumer,
        ):
            burst = await deliver(producer, [consumer], n, in_flight=IN_FLIGHT, application=APP)
            single = await deliver(
                producer, [consumer], max(50, n // 10), in_flight=1, application=APP
            )
    finally:
        server.stop()
    return {
        "rate": burst.rate,
        "lost": burst.lost,
        "p50": burst.sample.median * 1e3,
        "p99": burst.sample.percentile(0.99) * 1e3,
        "one p50": single.sample.median * 1e3 if single.latencies else float("nan"),
        "one p99": single.sample.percentile(0.99) * 1e3 if single.latencies else float("nan"),
        "one lost": single.lost,
    }


async def measure(
    ref: GoReference, inst: Instance, bus_url: str, *, n: int, rounds: int
) -> dict[str, list[Figures]]:
    servers: dict[str, Callable[[], Served]] = {
        "Go": lambda: ref.server(inst, bus_url, APP).start(),
        "ours": lambda: OurServer(inst, bus_url, APP).start(),
    }
    figures: dict[str, list[Figures]] = {name: [] for name in servers}
    for r in range(rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        for name in order:
            figures[name].append(await _round(servers[name], inst, bus_url, n))
    return figures


def report(bus: str, n: int, figures: dict[str, list[Figures]]) -> str:
    def med(name: str, what: str) -> float:
        return statistics.median(f[what] for f in figures[name])

    def total(name: str, what: str) -> int:
        return int(sum(f[what] for f in figures[name]))

    rows = []
    for name in ("Go", "ours"):
        rows.append(
            [
                name,
                f"{med(name, 'rate'):,.0f}",
                f"{total(name, 'lost')} of {n * len(figures[name])}",
                f"{med(name, 'p50'):.2f}",
                f"{med(name, 'p99'):.2f}",
                f"{med(name, 'one p50'):.3f}",
                f"{med(name, 'one p99'):.3f}",
                f"{med(name, 'rate') / med('Go', 'rate'):.2f}x",
                f"{med(name, 'one p50') / med('Go', 'one p50'):.2f}x",
            ]
        )
    return table(
        f"Event delivery, {bus}: user events raised in Asterisk, received by our client",
        rows,
        [
            "server",
            f"events/s ({IN_FLIGHT} in flight)",
            "lost (all rounds)",
            "p50 ms",
            "p99 ms",
            "one at a time p50 ms",
            "one at a time p99 ms",
            "events/s vs Go",
            "one at a time vs Go",
        ],
    )


async def run(ref: GoReference, inst: Instance, *, n: int = 3000, rounds: int = 3) -> str:
    out = []
    with NatsCluster(1) as nats:
        out.append(report("NATS", n, await measure(ref, inst, nats.urls[0], n=n, rounds=rounds)))
    rabbit = ensure_rabbitmq()
    out.append(report("RabbitMQ", n, await measure(ref, inst, rabbit, n=n, rounds=rounds)))
    return "\n\n".join(out)
