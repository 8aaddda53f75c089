"""`python -m bench [native] [proxy] [setup] [liveness] [chaos [scenario ...]]`: start what is
needed, measure side by side, print tables."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform

from ari_proxy.testing import ensure_nats, ensure_rabbitmq, make_spec, start, stop


async def main(which: list[str], n: int) -> None:
    inst = start(make_spec("bench-1"))
    inst2 = None
    try:
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
        print(f"Machine: {machine}, Python {platform.python_version()}, Asterisk 22 sandbox")
        print()
        if "native" in which:
            from . import native

            print(await native.run(inst, n=n))
            print()
        if "setup" in which:
            from . import setup

            print(await setup.run(inst, ensure_nats(), n=min(n, 300)))
            print()
        if "liveness" in which:
            from . import liveness

            print(await liveness.server_cost())
            print()
            for url in (ensure_nats(), ensure_rabbitmq()):
                print(await liveness.run(inst, url, n=min(n, 1000)))
                print()
        if "chaos" in which:
            from . import chaos

            names = [w for w in which if w in chaos.SCENARIOS]
            print(await chaos.run(inst, names))
            print()
        if "proxy" in which:
            from . import proxy

            inst2 = start(make_spec("bench-2"))
            print(await proxy.run(inst, inst2, ensure_nats(), n=n))
            print()
    finally:
        stop(inst.name)
        if inst2 is not None:
            stop(inst2.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="*", default=["native", "proxy"])
    parser.add_argument("-n", type=int, default=2000, help="requests per contender and mode")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.which, args.n))
