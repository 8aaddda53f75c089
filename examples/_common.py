"""Command-line plumbing shared by the examples: how to connect, from flags or environment."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

import ari_proxy


def main(run: Callable[[ari_proxy.Client, int | None], Awaitable[None]], doc: str | None) -> None:
    """Parse `--url/--app/--user/--password/--calls`, connect, and run the example."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument(
        "--url",
        default=os.environ.get("ARI_URL") or os.environ.get("MESSAGEBUS_URL"),
        help="http://host:8088/ari (direct) or nats://... / amqp://... (proxied)",
    )
    parser.add_argument("--app", default=os.environ.get("ARI_APPLICATION", "test"))
    parser.add_argument("--user", default=os.environ.get("ARI_USERNAME"))
    parser.add_argument("--password", default=os.environ.get("ARI_PASSWORD"))
    parser.add_argument("--calls", type=int, default=None, help="stop after this many calls")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def go() -> None:
        async with ari_proxy.connect(
            args.url, application=args.app, username=args.user, password=args.password
        ) as client:
            await run(client, args.calls)

    asyncio.run(go())
