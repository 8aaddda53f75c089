"""One client fixture, parametrised over every way of reaching Asterisk.

`client` is a connected `ari_proxy.Client` for a fresh application: direct (native ARI over
HTTP and WebSocket) or proxied (an in-process ari-proxy server on the same Asterisk, and the
proxy client, over NATS or over RabbitMQ). Every test in this folder runs once per way and
must pass the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance

TRANSPORTS = ["native", "nats", "rabbitmq"]


@pytest_asyncio.fixture(params=TRANSPORTS)
async def client(
    request: pytest.FixtureRequest,
    asterisk: Instance,
    app_name: str,
    nats_url: str,
    rabbitmq_url: str,
) -> AsyncIterator[ari_proxy.Client]:
    if request.param == "native":
        async with ari_proxy.connect(
            asterisk.http_url,
            application=app_name,
            username=asterisk.username,
            password=asterisk.password,
        ) as native:
            yield native
        return
    bus_url = nats_url if request.param == "nats" else rabbitmq_url
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
