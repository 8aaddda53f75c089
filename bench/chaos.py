"""Faults with calls flowing: what is lost, what the application is told, how long until normal.

`python -m bench chaos [scenario ...]` (or `scripts/chaos`) runs each scenario of
`ari_proxy.testing.chaos` on two Asterisk 22 sandboxes, a proxy process beside each, four
application instances (processes) in `listen()`, Local calls (2 per second over both nodes) and
SIP calls from sipp (one per second per node) flowing, and a probe request every 100 ms. Each
instance holds its calls 2 s raising a numbered user event on each every 200 ms. It prints a
table of calls, requests and events per scenario, and one of the memory of every process.

Scenarios: `nats-restart` (the NATS server stopped 3 s), `nats-node-kill` (in a 3-node
cluster, the node the proxies are on killed 3 s, the instances being on the others),
`rabbitmq-restart` (`stop_app` 3 s) and `rabbitmq-kill` (the broker SIGKILLed, started again
after 3 s), both on a private RabbitMQ node, `asterisk-restart` (`core restart now` on node 1),
`bus-cut` and `ari-cut` (proxy 1's link to NATS, or to its Asterisk, cut 3 s through a TCP
proxy), `proxy-kill` and `proxy-term` (proxy 1 SIGKILLed or SIGTERMed and started again),
`instance-stop` (the instance holding the most calls SIGSTOPped 3 s, then SIGCONT) and
`instance-kill` (that instance SIGKILLed).
"""

from __future__ import annotations

from ari_proxy.testing import Instance
from ari_proxy.testing.chaos import SCENARIOS, Outcome, Pace, run_scenario

from ._stats import table

__all__ = ["SCENARIOS", "run"]

HEADER = [
    "scenario",
    "calls started",
    "completed",
    "refused by Asterisk",
    "lost: never taken / dropped",
    "taken twice",
    "requests sent / failed / timed out / run late",
    "events sent / lost (told of a gap) / lost (untold)",
    "calls told of a gap",
    "handed over (kill to handover)",
    "outage / back after",
    "left in Asterisk / bindings / probe ok",
]


def cells(o: Outcome) -> list[str]:
    return [
        o.scenario,
        str(o.started),
        str(o.completed),
        str(o.refused),
        f"{o.never_taken} / {o.dropped}",
        str(o.taken_twice),
        f"{o.requests} / {o.failed} / {o.timed_out} / {o.ran_late}"
        + (f" ({o.ran_unanswered} ran, answer lost)" if o.ran_unanswered else ""),
        f"{o.events_acked} / {o.events_lost_told} / {o.events_lost_untold}",
        str(o.calls_told_of_gap),
        o.handover,
        f"{o.outage:.1f} s / {o.back_after:.1f} s",
        f"{o.left_in_asterisk} / {o.bindings_left} / {'yes' if o.probe_ok_at_end else 'NO'}",
    ]


def memory(outcomes: list[Outcome]) -> str:
    processes = list(outcomes[0].memory) if outcomes else []
    rows = [
        [o.scenario]
        + [
            f"{o.memory[p][0] / 2**20:.0f} → {o.memory[p][1] / 2**20:.0f}" if p in o.memory else "-"
            for p in processes
        ]
        for o in outcomes
    ]
    title = "RSS MB of each process, at the start → at the end"
    return table(title, rows, ["scenario", *processes])


async def run(nodes: list[Instance], which: list[str], pace: Pace | None = None) -> str:
    outcomes = []
    for name in which or list(SCENARIOS):
        outcome = await run_scenario(name, nodes, pace=pace)
        print(" | ".join(cells(outcome)), flush=True)
        outcomes.append(outcome)
    notes = [f"- {o.scenario}: {o.note}" for o in outcomes if o.note]
    return "\n\n".join(
        [
            table(
                "Faults with calls flowing (2 Asterisk, 2 proxies, 4 instances in listen(), "
                "Local and SIP calls, a probe request every 100 ms)",
                [cells(o) for o in outcomes],
                HEADER,
            ),
            memory(outcomes),
            "\n".join(notes),
        ]
    )
