"""A NATS outage between the server and the broker: the server reconnects by itself."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client as NatsClient
from server_helpers import request, unicast

from ari_proxy.bus import BusState
from ari_proxy.testing import Instance, running_proxy, wait_until
from ari_proxy.testing._tcpproxy import TcpProxy

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`


async def test_server_survives_a_cut_nats_link(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    target = urlsplit(nats_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 4222) as proxy:
        async with running_proxy(asterisk, proxy.url("nats"), app_name) as server:
            subject = unicast("data", app_name, server.node)
            body = {"kind": "AsteriskInfo", "key": None}
            assert (await request(nc, subject, body))["error"] == ""
            await proxy.cut()
            await wait_until(lambda: server.bus.state is not BusState.CONNECTED)
            with contextlib.suppress(nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await request(nc, subject, body, timeout=0.5)
                raise AssertionError("a cut server must not answer")
            await asyncio.sleep(2.0)  # pacing: an outage through failed reconnects
            await proxy.restore()
            await wait_until(lambda: server.bus.state is BusState.CONNECTED, timeout=30)
            for _ in range(100):  # bounded: the subscriptions come back with the link
                try:
                    reply = await request(nc, subject, body, timeout=1.0)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.1)
            assert reply["data"]["asterisk"]["system"]["entity_id"] == server.node
            assert server.ari_connected
