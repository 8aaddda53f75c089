"""An ari-proxy server run in the test's own event loop, beside a sandbox Asterisk.

For tests of an application against the real proxy path (bus, server, Asterisk) without a
separate process; `tests/` uses it for every server and interop test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from ..server import Server, ServerConfig
from ._asterisk import Instance

__all__ = ["proxy_config", "running_proxy", "wait_until"]


def proxy_config(inst: Instance, bus_url: str, *apps: str, **overrides: Any) -> ServerConfig:
    """A server configuration for `apps` on the sandbox instance `inst`, on `bus_url`.

    `overrides` replace fields of `ServerConfig` (for example `request_timeout=1.0`). The
    shutdown grace is 3 s instead of the production default, so tests end quickly.
    """
    config = ServerConfig(
        applications=tuple(apps),
        ari_username=inst.username,
        ari_password=inst.password,
        ari_http_url=inst.http_url,
        ari_websocket_url=inst.ws_url,
        bus_urls=(bus_url,),
        shutdown_grace=3.0,
    )
    return replace(config, **overrides) if overrides else config


@contextlib.asynccontextmanager
async def running_proxy(
    inst: Instance, bus_url: str, *apps: str, **overrides: Any
) -> AsyncIterator[Server]:
    """A started server (subscribed and announced) for `apps` on `inst`, stopped at the end."""
    server = Server(proxy_config(inst, bus_url, *apps, **overrides))
    await server.start(ari_timeout=30)
    try:
        yield server
    finally:
        await server.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` every 20 ms until it holds, for state that no event announces.

    Raises:
        TimeoutError: it did not hold within `timeout` seconds.
    """
    async with asyncio.timeout(timeout):
        # Polling is the point: the state has no event to wait for.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
