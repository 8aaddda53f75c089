"""`python -m bench [native] [proxy] [transports] [liveness] [go] [floor] [recovery [fault ...]]
[fuzz] [soak] [setup] [chaos [scenario ...]] [-n N] [--calls N] [--plot FILE] [--bus BUS]
[--rounds N]`: start what is needed, measure side by side, print tables. `-n` is each part's
count of requests (or of messages, for `fuzz`); without it each part takes its own default."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
from pathlib import Path

from ari_proxy.testing import ensure_nats, ensure_rabbitmq, make_spec, start, stop


async def main(
    which: list[str],
    n: int | None,
    calls: int | None = None,
    plot: Path | None = None,
    bus: str = "nats",
    rounds: int = 3,
) -> None:
    inst = start(make_spec(f"bench-{os.getpid()}-a"))
    inst2 = None
    try:
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
        print(f"Machine: {machine}, Python {platform.python_version()}, Asterisk 22 sandbox")
        print()
        if "native" in which:
            from . import native

            print(await native.run(inst, n=n or 2000))
            print()
        if "setup" in which:
            from . import setup

            print(await setup.run(inst, ensure_nats(), n=n or 300))
            print()
        if "liveness" in which:
            from . import liveness

            print(await liveness.server_cost())
            print()
            for url in (ensure_nats(), ensure_rabbitmq()):
                print(await liveness.run(inst, url, n=n or 1000))
                print()
        if "chaos" in which:
            from . import chaos

            names = [w for w in which if w in chaos.SCENARIOS]
            inst2 = start(make_spec(f"bench-{os.getpid()}-b"))
            print(await chaos.run([inst, inst2], names))
            print()
        if "soak" in which:
            from . import soak

            print(
                await soak.run(
                    inst, requests=n or 1_000_000, calls=calls or 20_000, plot=plot, bus=bus
                )
            )
            print()
        if "fuzz" in which:
            from . import fuzz

            print(await fuzz.run(inst, n=n or 100_000))
            print()
        if "recovery" in which:
            from . import recovery

            faults = [w for w in which if w in recovery.FAULTS]
            print(await recovery.run(inst, faults, rounds=rounds))
            print()
        if "go" in which:
            from . import goevents, goref
            from ._servers import find_goref

            print(await goref.run(inst, n=n or 1000, rounds=rounds))
            if (ref := find_goref()) is not None:
                print()
                print(await goevents.run(ref, inst, n=3 * (n or 1000), rounds=rounds))
            print()
        if "floor" in which:
            from . import floor

            print(await floor.run(inst, n=n or 1000, rounds=rounds))
            print()
        if "transports" in which:
            from . import transports

            print(await transports.run(inst, ensure_nats(), n=n or 2000))
            print()
        if "proxy" in which:
            from . import proxy

            inst2 = inst2 or start(make_spec(f"bench-{os.getpid()}-b"))
            print(await proxy.run(inst, inst2, ensure_nats(), n=n or 2000))
            print()
    finally:
        stop(inst.name)
        if inst2 is not None:
            stop(inst2.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="*", default=["native", "proxy"])
    parser.add_argument("-n", type=int, help="requests (messages) per contender and mode")
    parser.add_argument("--calls", type=int, help="soak: calls to place")
    parser.add_argument("--plot", type=Path, help="soak: draw the memory curves to this PNG")
    parser.add_argument("--bus", choices=("nats", "rabbitmq"), default="nats", help="soak: the bus")
    parser.add_argument(
        "--rounds", type=int, default=3, help="go, floor, recovery: alternating rounds"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.which, args.n, args.calls, args.plot, args.bus, args.rounds))
