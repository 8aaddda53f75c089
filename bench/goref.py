"""The Go reference beside us: the same load against the Go server and ours, in alternating rounds.

`python -m bench go [-n N]` needs the real Go binaries (`ARI_PROXY_GOREF`, else
`../shared/goref/bin` beside the checkout); without them it prints one line saying so and
measures nothing. For each bus (NATS, RabbitMQ), each round starts one server at a time beside
the same Asterisk (the Go server, then ours, the order swapped every round) and drives it with
two load generators:

- the Go client's own benchmark (`ari-goclient -op bench`): `Asterisk().Info` serially, then 32
  in flight, each phase in its own process (the Go client over RabbitMQ runs out of AMQP channels
  after about 2,000 requests);
- our proxy client: `asterisk.info()` on the server's node serially and 32 in flight, then
  originate + hangup of a Local channel serially.

So each server is measured under both generators, and the full stacks (Go client + Go server,
our client + our server) sit on the same table. Every figure is the median over rounds of that
round's figure; both ratios are ours over Go's, so below 1.00x is better for us in latency and
above 1.00x in throughput.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import ari_proxy
from ari_proxy.testing import GoClientError, GoReference, Instance, NatsCluster, ensure_rabbitmq

from ._servers import OurServer, Served, find_goref
from ._stats import Sample, concurrent, serial, table

APP = "bench-go"
IN_FLIGHT = 32
REQUEST_TIMEOUT = 2.0
"""Seconds, for both clients: long enough that a loaded machine shows in the figures, not as a
failed run."""

Figures = dict[str, float]
"""One round's figures for one (generator, server) cell: `p50`, `p99` in µs, `rps`."""


@dataclass
class Cells:
    """Per-round figures of every (generator, server, operation) cell, for one bus."""

    rounds: dict[tuple[str, str, str], list[Figures]] = field(default_factory=dict)

    def add(self, generator: str, server: str, op: str, figures: Figures) -> None:
        self.rounds.setdefault((generator, server, op), []).append(figures)

    def median(self, generator: str, server: str, op: str, what: str) -> float:
        return statistics.median(f[what] for f in self.rounds[(generator, server, op)])


async def _go_generator(ref: GoReference, bus_url: str, n: int) -> dict[str, Figures]:
    async def phase(name: str) -> dict[str, float]:
        lines = await ref.client(
            "bench",
            "-n",
            str(n),
            "-conc",
            str(IN_FLIGHT),
            "-phase",
            name,
            "-request-timeout",
            f"{REQUEST_TIMEOUT:g}s",
            bus_url=bus_url,
            application=APP,
            timeout=300,
            check=False,
        )
        figures = {k: float(v) for line in lines for k, v in line.items() if _number(v)}
        if not figures:  # it prints only `{"error": ...}` when a request failed
            raise GoClientError(f"the Go client's {name} phase failed: {lines}")
        return figures

    serial_figures, concurrent_figures = await phase("serial"), await phase("conc")
    return {
        "info": {
            "p50": serial_figures["serial_p50_us"],
            "p99": serial_figures["serial_p99_us"],
            "rps": concurrent_figures["conc_rps"],
        }
    }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _latencies(sample: Sample) -> Figures:
    return {"p50": sample.median * 1e6, "p99": sample.percentile(0.99) * 1e6}


async def _our_generator(bus_url: str, node: str, n: int) -> dict[str, Figures]:
    async with ari_proxy.connect(bus_url, application=APP, timeout=REQUEST_TIMEOUT) as client:

        def info() -> Awaitable[object]:
            return client.asterisk.info(node=node)

        async def originate_hangup() -> None:
            channel = await client.channels.originate("Local/wait@default", node=node)
            await channel.hangup()

        one = await serial("info", info, n)
        many = await concurrent("info", info, n, in_flight=IN_FLIGHT)
        calls = await serial("originate", originate_hangup, max(50, n // 10), warmup=5)
    return {
        "info": {**_latencies(one), "rps": many.throughput},
        "originate + hangup": {**_latencies(calls), "rps": calls.throughput},
    }


async def _round(
    start: Callable[[], Served], ref: GoReference, bus_url: str, inst: Instance, n: int
) -> tuple[dict[str, Figures], dict[str, Figures]]:
    server = start()
    try:
        await server.ready(timeout=30)
        go = await _go_generator(ref, bus_url, n)
        ours = await _our_generator(bus_url, inst.entity_id, n)
    finally:
        server.stop()
    return go, ours


async def measure(ref: GoReference, inst: Instance, bus_url: str, *, n: int, rounds: int) -> Cells:
    """Alternating rounds of both servers under both generators on one bus."""
    servers: dict[str, Callable[[], Served]] = {
        "Go": lambda: ref.server(inst, bus_url, APP).start(),
        "ours": lambda: OurServer(inst, bus_url, APP).start(),
    }
    cells = Cells()
    for r in range(rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        for name in order:
            go, ours = await _round(servers[name], ref, bus_url, inst, n)
            for op, figures in go.items():
                cells.add("Go client", name, op, figures)
            for op, figures in ours.items():
                cells.add("our client", name, op, figures)
    return cells


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def _cells(figures: Figures, go: Figures) -> list[str]:
    """p50, p99, req/s, and the p50 and req/s ratios to Go's."""
    return [
        f"{figures['p50']:,.0f}",
        f"{figures['p99']:,.0f}",
        f"{figures['rps']:,.0f}",
        _ratio(figures["p50"], go["p50"]),
        _ratio(figures["rps"], go["rps"]),
    ]


def report(bus: str, cells: Cells) -> str:
    """Two tables for one bus: each server under each generator, and the two full stacks."""
    rows = []
    for generator, _, op in sorted({(g, "", o) for g, _, o in cells.rounds}):
        go = {w: cells.median(generator, "Go", op, w) for w in ("p50", "p99", "rps")}
        ours = {w: cells.median(generator, "ours", op, w) for w in ("p50", "p99", "rps")}
        for name, figures in (("Go", go), ("ours", ours)):
            rows.append([generator, op, name, *_cells(figures, go)])
    servers = table(
        f"Server only, {bus}: the same generator against each server",
        rows,
        [
            "generator",
            "request",
            "server",
            "serial p50 µs",
            "serial p99 µs",
            f"req/s ({IN_FLIGHT} in flight)",
            "p50 vs Go",
            "req/s vs Go",
        ],
    )
    go_stack = {w: cells.median("Go client", "Go", "info", w) for w in ("p50", "p99", "rps")}
    our_stack = {w: cells.median("our client", "ours", "info", w) for w in ("p50", "p99", "rps")}
    stacks = table(
        f"Full stack, {bus}: Go client + Go server against our client + our server (Info)",
        [
            [name, *_cells(f, go_stack)]
            for name, f in (("Go + Go", go_stack), ("ours + ours", our_stack))
        ],
        [
            "stack",
            "serial p50 µs",
            "serial p99 µs",
            f"req/s ({IN_FLIGHT} in flight)",
            "p50 vs Go",
            "req/s vs Go",
        ],
    )
    return f"{servers}\n\n{stacks}"


async def run(inst: Instance, *, n: int = 1000, rounds: int = 3) -> str:
    """Every bus's tables, or one line saying why there are none."""
    ref = find_goref()
    if ref is None:
        return (
            "Go reference rows: not measured, the Go binaries were not found "
            "(set ARI_PROXY_GOREF to the folder holding ari-proxy-go and ari-goclient)"
        )
    out = [
        f"Go reference: {ref.version()} from {ref.bin}; {rounds} alternating rounds, "
        f"n={n} per phase, medians over rounds"
    ]
    # NATS: a server of its own, where no other server answers the Go client's broadcasts. The
    # Go client over RabbitMQ always dials the default virtual host, so the machine's broker.
    with NatsCluster(1) as nats:
        out.append(report("NATS", await measure(ref, inst, nats.urls[0], n=n, rounds=rounds)))
    out.append(report("RabbitMQ", await measure(ref, inst, ensure_rabbitmq(), n=n, rounds=rounds)))
    return "\n\n".join(out)
