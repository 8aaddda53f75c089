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

import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import ari_proxy
from ari_proxy.testing import GoClientError, GoReference, Instance, NatsCluster, ensure_rabbitmq

from ._servers import OurServer, Served, find_goref
from ._stats import Sample, children_cpu, concurrent, own_cpu, process_cpu, serial, table

APP = "bench-go"
IN_FLIGHT = 32
REQUEST_TIMEOUT = 2.0
"""Seconds, for both clients: long enough that a loaded machine shows in the figures, not as a
failed run."""

Figures = dict[str, float]
"""One round's figures for one (generator, server) cell: `p50`, `p99` in µs, `rps`, and the
CPU µs per request of the server and of the generator, in the serial phase (`server_cpu`,
`client_cpu`) and with 32 in flight (`server_cpu_conc`, `client_cpu_conc`)."""

FIGURES = ("p50", "p99", "rps", "server_cpu", "server_cpu_conc", "client_cpu", "client_cpu_conc")

WARMUP = 50
"""Requests our generator makes before each timed phase (the Go client makes none); they are
counted in its CPU per request, as they ran while its CPU was measured."""


@dataclass
class CpuMeter:
    """CPU seconds of the server process and of the generator over one phase.

    The generator is this process (our client) or its children (the Go client, a subprocess
    that has ended, and been waited for, by the end of its phase). Nothing else runs in this
    process during a phase, and the server process runs only that server."""

    server_pid: int
    generator: Callable[[], float]

    def __call__(self) -> tuple[float, float]:
        return process_cpu(self.server_pid), self.generator()

    def per_request(self, before: tuple[float, float], requests: int) -> tuple[float, float]:
        """(server, generator) CPU µs per request since `before`."""
        server, client = self()
        return (server - before[0]) * 1e6 / requests, (client - before[1]) * 1e6 / requests


@dataclass
class Cells:
    """Per-round figures of every (generator, server, operation) cell, for one bus."""

    rounds: dict[tuple[str, str, str], list[Figures]] = field(default_factory=dict)
    retried: list[str] = field(default_factory=list)
    """Go client phases run again after they failed, with the server and the Go client's error."""

    def add(self, generator: str, server: str, op: str, figures: Figures) -> None:
        self.rounds.setdefault((generator, server, op), []).append(figures)

    def median(self, generator: str, server: str, op: str, what: str) -> float:
        """The median over rounds, or NaN where the cell has no such figure."""
        values = [f[what] for f in self.rounds[(generator, server, op)] if what in f]
        return statistics.median(values) if values else float("nan")

    def medians(self, generator: str, server: str, op: str) -> Figures:
        return {w: self.median(generator, server, op, w) for w in FIGURES}


GO_ATTEMPTS = 3
"""Runs of a Go client phase before the bench gives up: on a loaded machine its `Info` fails
now and then with its own "no data", against either server (docs/benchmarks.md)."""


async def _go_generator(
    ref: GoReference, bus_url: str, n: int, server_pid: int, retried: list[str]
) -> dict[str, Figures]:
    cpu = CpuMeter(server_pid, children_cpu)

    async def phase(name: str) -> dict[str, float]:
        for _ in range(GO_ATTEMPTS - 1):
            try:
                return await attempt(name)
            except GoClientError as exc:
                retried.append(str(exc))
        return await attempt(name)

    async def attempt(name: str) -> dict[str, float]:
        before = cpu()
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
        used = cpu.per_request(before, n)  # the process's start counted in: Go's is ~ms
        figures = {k: float(v) for line in lines for k, v in line.items() if _number(v)}
        if not figures:  # it prints only `{"error": ...}` when a request failed
            raise GoClientError(f"the Go client's {name} phase failed: {lines}")
        return {**figures, "server_cpu": used[0], "client_cpu": used[1]}

    one, many = await phase("serial"), await phase("conc")
    return {
        "info": {
            "p50": one["serial_p50_us"],
            "p99": one["serial_p99_us"],
            "rps": many["conc_rps"],
            "server_cpu": one["server_cpu"],
            "client_cpu": one["client_cpu"],
            "server_cpu_conc": many["server_cpu"],
            "client_cpu_conc": many["client_cpu"],
        }
    }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _latencies(sample: Sample) -> Figures:
    return {"p50": sample.median * 1e6, "p99": sample.percentile(0.99) * 1e6}


async def _our_generator(bus_url: str, node: str, n: int, server_pid: int) -> dict[str, Figures]:
    cpu = CpuMeter(server_pid, own_cpu)
    async with ari_proxy.connect(bus_url, application=APP, timeout=REQUEST_TIMEOUT) as client:

        def info() -> Awaitable[object]:
            return client.asterisk.info(node=node)

        async def originate_hangup() -> None:
            channel = await client.channels.originate("Local/wait@default", node=node)
            await channel.hangup()

        before = cpu()
        one = await serial("info", info, n, warmup=WARMUP)
        one_cpu = cpu.per_request(before, n + WARMUP)
        before = cpu()
        many = await concurrent("info", info, n, in_flight=IN_FLIGHT, warmup=WARMUP)
        many_cpu = cpu.per_request(before, n + WARMUP)
        calls_n = max(50, n // 10)
        before = cpu()
        calls = await serial("originate", originate_hangup, calls_n, warmup=5)
        calls_cpu = cpu.per_request(before, calls_n + 5)
    return {
        "info": {
            **_latencies(one),
            "rps": many.throughput,
            "server_cpu": one_cpu[0],
            "client_cpu": one_cpu[1],
            "server_cpu_conc": many_cpu[0],
            "client_cpu_conc": many_cpu[1],
        },
        "originate + hangup": {
            **_latencies(calls),
            "rps": calls.throughput,
            "server_cpu": calls_cpu[0],
            "client_cpu": calls_cpu[1],
        },
    }


async def _round(
    start: Callable[[], Served],
    ref: GoReference,
    bus_url: str,
    inst: Instance,
    n: int,
    retried: list[str],
) -> tuple[dict[str, Figures], dict[str, Figures]]:
    server = start()
    try:
        await server.ready(timeout=30)
        assert server.process is not None
        go = await _go_generator(ref, bus_url, n, server.process.pid, retried)
        ours = await _our_generator(bus_url, inst.entity_id, n, server.process.pid)
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
            failed: list[str] = []
            go, ours = await _round(servers[name], ref, bus_url, inst, n, failed)
            cells.retried += [f"{name} server: {error}" for error in failed]
            for op, figures in go.items():
                cells.add("Go client", name, op, figures)
            for op, figures in ours.items():
                cells.add("our client", name, op, figures)
    return cells


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def _cells(figures: Figures, go: Figures) -> list[str]:
    """p50, p99, req/s, the p50 and req/s ratios to Go's, and CPU µs per request."""
    return [
        f"{figures['p50']:,.0f}",
        f"{figures['p99']:,.0f}",
        f"{figures['rps']:,.0f}",
        _ratio(figures["p50"], go["p50"]),
        _ratio(figures["rps"], go["rps"]),
        _cpu(figures, "server"),
        _cpu(figures, "client"),
    ]


def _cpu(figures: Figures, who: str) -> str:
    """`serial / in flight` CPU µs per request ("-" for a phase not run)."""
    return " / ".join(
        "-" if math.isnan(v) else f"{v:,.0f}"
        for v in (figures[f"{who}_cpu"], figures[f"{who}_cpu_conc"])
    )


HEADER = [
    "serial p50 µs",
    "serial p99 µs",
    f"req/s ({IN_FLIGHT} in flight)",
    "p50 vs Go",
    "req/s vs Go",
    f"server CPU µs/req (serial / {IN_FLIGHT})",
    f"client CPU µs/req (serial / {IN_FLIGHT})",
]


def report(bus: str, cells: Cells) -> str:
    """Two tables for one bus: each server under each generator, and the two full stacks."""
    rows = []
    for generator, _, op in sorted({(g, "", o) for g, _, o in cells.rounds}):
        go = cells.medians(generator, "Go", op)
        ours = cells.medians(generator, "ours", op)
        for name, figures in (("Go", go), ("ours", ours)):
            rows.append([generator, op, name, *_cells(figures, go)])
    servers = table(
        f"Server only, {bus}: the same generator against each server",
        rows,
        ["generator", "request", "server", *HEADER],
    )
    go_stack = cells.medians("Go client", "Go", "info")
    our_stack = cells.medians("our client", "ours", "info")
    stacks = table(
        f"Full stack, {bus}: Go client + Go server against our client + our server (Info)",
        [
            [name, *_cells(f, go_stack)]
            for name, f in (("Go + Go", go_stack), ("ours + ours", our_stack))
        ],
        ["stack", *HEADER],
    )
    retried = "".join(f"\n- {line}" for line in cells.retried)
    retried = f"\n\nGo client phases run again after a failure:{retried}" if retried else ""
    return f"{servers}\n\n{stacks}{retried}"


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
