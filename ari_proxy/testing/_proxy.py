"""An ari-proxy server run in the test's own event loop, beside a sandbox Asterisk.

For tests of an application against the real proxy path (bus, server, Asterisk) without a
separate process; `tests/` uses it for every server and interop test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from ..server import Server, ServerConfig
from ._asterisk import Instance, InstanceSpec, free_port, make_spec, start, stop

__all__ = [
    "outbound_config",
    "outbound_spec",
    "proxy_config",
    "running_outbound",
    "running_proxy",
    "wait_until",
]


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


def outbound_spec(
    name: str, *apps: str, port: int | None = None, tls: bool = False
) -> InstanceSpec:
    """A sandbox instance that dials `ws://127.0.0.1:<port>/ari` (a free port when None; with
    `tls`, `wss://`, not verifying the certificate) with an outbound persistent WebSocket
    serving `apps`."""
    port = port or free_port()
    scheme = "wss" if tls else "ws"
    return make_spec(name, outbound_url=f"{scheme}://127.0.0.1:{port}/ari", outbound_apps=apps)


def outbound_config(spec: InstanceSpec, bus_url: str, **overrides: Any) -> ServerConfig:
    """A server configuration in outbound mode for the instance `spec` describes: listening
    where it dials, checking what it presents, REST over that socket (`ari.transport`
    websocket), HTTP for recordings."""
    host_port = spec.outbound_url.partition("://")[2].partition("/")[0]
    config = ServerConfig(
        applications=tuple(spec.outbound_apps.split(",")),
        ari_username=spec.username,
        ari_password=spec.password,
        ari_http_url=f"http://127.0.0.1:{spec.http_port}/ari",
        ari_transport="websocket",
        ari_listen=host_port,
        ari_listen_username=spec.outbound_username,
        ari_listen_password=spec.outbound_password,
        bus_urls=(bus_url,),
        shutdown_grace=3.0,
    )
    return replace(config, **overrides) if overrides else config


@contextlib.asynccontextmanager
async def running_outbound(
    name: str, bus_url: str, *apps: str, **overrides: Any
) -> AsyncIterator[tuple[Instance, Server]]:
    """A sandbox Asterisk in outbound persistent mode for `apps`, and a started server it
    dialled; both stopped at the end. With `ari_listen_tls_cert_file` among the overrides,
    Asterisk dials `wss://`."""
    spec = outbound_spec(name, *apps, tls=bool(overrides.get("ari_listen_tls_cert_file")))
    server = Server(outbound_config(spec, bus_url, **overrides))
    starting = asyncio.ensure_future(server.start(ari_timeout=60))
    try:
        inst = await asyncio.to_thread(start, spec)
        try:
            await starting
            yield inst, server
        finally:
            # Asterisk first: it would dial again while the server stops listening.
            await asyncio.to_thread(stop, inst.name)
            await server.stop()
    finally:
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
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


def proxy_env(
    inst: Instance | None = None, bus_url: str = "", application: str = "", **values: str
) -> dict[str, str]:
    """The environment of an `ari-proxy` process: this one's without any `ARI_`, `MESSAGEBUS_`,
    `PROXY_` or `NATS_` setting (so only what is given applies), then `inst`'s ARI URL and
    credentials, the bus URL and the application when given, then `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARI_", "MESSAGEBUS_", "PROXY_", "NATS_"))
    }
    if inst is not None:
        env.update(
            ARI_USERNAME=inst.username, ARI_PASSWORD=inst.password, ARI_HTTP_URL=inst.http_url
        )
    if bus_url:
        env["MESSAGEBUS_URL"] = bus_url
    if application:
        env["ARI_APPLICATION"] = application
    env.update(values)
    return env
