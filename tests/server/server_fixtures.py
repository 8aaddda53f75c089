"""Fixtures of the server tests, loaded through `pytest_plugins = ["server_fixtures"]`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from ari_proxy.server import Server
from ari_proxy.testing import Instance, running_proxy

__all__ = ["nc", "server"]


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    """A raw nats-py connection, as a Go client would hold (no ari-proxy code involved)."""
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def server(asterisk: Instance, nats_url: str, app_name: str) -> AsyncIterator[Server]:
    """A server for a fresh application on the session's Asterisk."""
    async with running_proxy(asterisk, nats_url, app_name) as srv:
        yield srv
