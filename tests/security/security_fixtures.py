"""Fixtures of the security tests, loaded through `pytest_plugins = ["security_fixtures"]`.

(No conftest.py: the protocol tests import theirs as the module `conftest`, and a second one
could shadow it.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from security_kit import AuthNats

from ari_proxy.server import Server
from ari_proxy.testing import Instance, running_proxy

__all__ = ["auth_nats", "nc", "server"]


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    """A raw nats-py connection, as a Go client would hold."""
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


@pytest.fixture
def auth_nats() -> Iterator[AuthNats]:
    """A nats-server with a user and a password (`AuthNats`)."""
    served = AuthNats()
    served.start()
    try:
        yield served
    finally:
        served.stop()
