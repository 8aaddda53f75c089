"""One client fixture, parametrised over every way of reaching Asterisk.

`client` is a connected `ari_proxy.Client` for a fresh application: direct (native ARI over
HTTP and WebSocket, or with REST over the WebSocket too), proxied by our server (an in-process
ari-proxy server on the same Asterisk, and the proxy client, over NATS or over RabbitMQ), or
proxied by the real Go server (`ari-proxy-go` v5, with our proxy client, over NATS or
RabbitMQ), or by our server in outbound mode (a sandbox Asterisk of its own dials the server
with its outbound persistent WebSocket; REST goes back on that socket). Every test in this
folder runs once per way and must pass the same; what the Go server cannot do is asserted as
such, through `served_by`. The native client runs in outbound mode too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import (
    GoReference,
    Instance,
    outbound_spec,
    running_outbound,
    start,
    stop,
)

TRANSPORTS = [
    "native",
    "native-websocket",
    "native-outbound",
    pytest.param("nats", marks=pytest.mark.interop(client="ours", server="ours", bus="nats")),
    pytest.param(
        "rabbitmq", marks=pytest.mark.interop(client="ours", server="ours", bus="rabbitmq")
    ),
    "nats-outbound",
    "rabbitmq-outbound",
    pytest.param(
        "go-nats",
        marks=[pytest.mark.goref, pytest.mark.interop(client="ours", server="go", bus="nats")],
    ),
    pytest.param(
        "go-rabbitmq",
        marks=[pytest.mark.goref, pytest.mark.interop(client="ours", server="go", bus="rabbitmq")],
    ),
]


@pytest.fixture
def served_by(request: pytest.FixtureRequest) -> str:
    """Who executes the client's requests: `native` (no proxy), `ours` or `go`."""
    way = str(request.node.callspec.params["client"])
    return "native" if way.startswith("native") else "go" if way.startswith("go-") else "ours"


@pytest_asyncio.fixture(params=TRANSPORTS)
async def client(
    request: pytest.FixtureRequest,
    asterisk: Instance,
    app_name: str,
    nats_url: str,
    rabbitmq_url: str,
) -> AsyncIterator[ari_proxy.Client]:
    way = str(request.param)
    if way == "native-outbound":
        # The native client in outbound mode: a sandbox Asterisk of its own dials it.
        spec = outbound_spec(f"pytest-{os.getpid()}-nob-{app_name.removeprefix('t-')}", app_name)
        host, _, port = spec.outbound_url.removeprefix("ws://").partition("/")[0].partition(":")
        serving = ari_proxy.serve_outbound(
            app_name,
            host=host,
            port=int(port),
            username=spec.outbound_username,
            password=spec.outbound_password,
            url=f"http://127.0.0.1:{spec.http_port}/ari",
            ari_username=spec.username,
            ari_password=spec.password,
        )
        waiting = asyncio.ensure_future(serving)
        inst = await asyncio.to_thread(start, spec)
        try:
            yield await waiting
        finally:
            # Asterisk first: it would dial again while the client stops listening.
            await asyncio.to_thread(stop, inst.name)
            if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
                await waiting.result().close()
            waiting.cancel()
        return
    if way.startswith("native"):
        async with ari_proxy.connect(
            asterisk.http_url,
            application=app_name,
            username=asterisk.username,
            password=asterisk.password,
            transport="websocket" if way == "native-websocket" else "http",
        ) as native:
            yield native
        return
    bus_url = nats_url if "nats" in way else rabbitmq_url
    if way.endswith("-outbound"):
        # An Asterisk of its own, which dials our server (ari.conf type=outbound_websocket);
        # requests go back on that socket.
        name = f"pytest-{os.getpid()}-ob-{app_name.removeprefix('t-')}"
        async with running_outbound(name, bus_url, app_name):
            async with ari_proxy.connect(bus_url, application=app_name, timeout=5.0) as proxied:
                yield proxied
        return
    if way.startswith("go-"):
        goref: GoReference = request.getfixturevalue("goref")
        async with goref.server(asterisk, bus_url, app_name):
            async with ari_proxy.connect(bus_url, application=app_name, timeout=5.0) as proxied:
                yield proxied
        return
    config = ServerConfig(
        applications=(app_name,),
        ari_username=asterisk.username,
        ari_password=asterisk.password,
        ari_http_url=asterisk.http_url,
        bus_urls=(bus_url,),
        shutdown_grace=3.0,
    )
    server = Server(config)
    await server.start(ari_timeout=30)
    try:
        async with ari_proxy.connect(bus_url, application=app_name, timeout=5.0) as proxied:
            yield proxied
    finally:
        await server.stop()
