"""Fixtures of the interop tests, loaded through `pytest_plugins = ["interop_fixtures"]`.

Every test here runs the real Go binaries (`goref`), so it is deselected where they are absent
(see `ari_proxy.testing.pytest_plugin`). `bus_url` runs each test once per bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ari_proxy.server import Server
from ari_proxy.testing import GoReference, GoServer, Instance, running_proxy

__all__ = ["bus_url", "go_server", "our_server"]


@pytest.fixture(params=["nats", "rabbitmq"])
def bus_url(request: pytest.FixtureRequest, nats_url: str, rabbitmq_url: str) -> str:
    """The bus of the test: NATS, then RabbitMQ."""
    return nats_url if request.param == "nats" else rabbitmq_url


@pytest_asyncio.fixture
async def our_server(asterisk: Instance, bus_url: str, app_name: str) -> AsyncIterator[Server]:
    """Our server for the test's application on the session's Asterisk."""
    async with running_proxy(asterisk, bus_url, app_name) as server:
        yield server


@pytest_asyncio.fixture
async def go_server(
    goref: GoReference, asterisk: Instance, bus_url: str, app_name: str
) -> AsyncIterator[GoServer]:
    """The Go server for the test's application on the session's Asterisk, ready."""
    async with goref.server(asterisk, bus_url, app_name) as server:
        yield server
