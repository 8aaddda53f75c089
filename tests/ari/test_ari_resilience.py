"""The native client survives Asterisk restarts: it reconnects by itself, says what it may have
missed with a `ConnectionGap`, and notices when the Asterisk behind the URL is another one.

Each test starts its own Asterisk on a fixed port (never the session instance) and restarts it
there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import ari_proxy.ari as ari
from ari_proxy._exceptions import TransportError
from ari_proxy.api import ConnectionGap, event_type
from ari_proxy.ari import ConnectionState
from ari_proxy.testing import Instance, InstanceSpec, free_port, make_spec, start, stop

pytestmark = pytest.mark.integration

Restartable = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def dedicated() -> AsyncIterator[tuple[InstanceSpec, Restartable]]:
    """A spec with a fixed HTTP port, and a function that (re)starts an instance on it."""
    spec = make_spec(f"ari-rs-{os.getpid()}-{secrets.token_hex(2)}", http_port=free_port())
    names: set[str] = set()

    async def run(which: InstanceSpec) -> Instance:
        names.add(which.name)
        return await asyncio.to_thread(start, which)

    yield spec, run
    for name in names:
        await asyncio.to_thread(stop, name)


class StateLog:
    """An `on_state` callback that remembers every state and can wait for one."""

    def __init__(self) -> None:
        self.states: list[ConnectionState] = []
        self._changed = asyncio.Event()

    def __call__(self, state: ConnectionState) -> None:
        self.states.append(state)
        self._changed.set()

    async def reached(self, wanted: ConnectionState) -> None:
        while wanted not in self.states:
            self._changed.clear()
            await self._changed.wait()


async def test_restart_under_a_subscribed_client(dedicated, expect) -> None:
    spec, run = dedicated
    async with asyncio.timeout(60):
        inst = await run(spec)
        async with ari.connect(inst.http_url, inst.username, inst.password, "resilient") as client:
            log = StateLog()
            client.on_state(log)
            assert client.state is ConnectionState.CONNECTED and client.node == spec.entity_id
            async with client.subscribe() as everything:
                await asyncio.to_thread(stop, spec.name)
                await log.reached(ConnectionState.RECONNECTING)
                assert client.state is ConnectionState.RECONNECTING
                with pytest.raises(TransportError):  # requests fail fast while it is down
                    await client.asterisk.ping()

                await run(spec)  # same spec, same port
                await client.wait_connected(timeout=20)
                assert log.states == [ConnectionState.RECONNECTING, ConnectionState.CONNECTED]

                gap = await expect(everything, "ConnectionGap", timeout=5)
                assert isinstance(gap, ConnectionGap)
                assert (gap.source, gap.application) == ("ari", "resilient")
                assert gap.asterisk_id == gap.previous_node == spec.entity_id
                assert 0 < gap.duration < 30 and gap.ended > gap.started

                # Requests and events work again, on the same client and subscription.
                assert (await client.asterisk.ping()).asterisk_id == spec.entity_id
                await client.events.user_event("after-restart")
                event = await expect(everything, "ChannelUserevent")
                assert event.eventname == "after-restart"
                channel = await client.channels.originate("Local/wait@default")
                started = await expect(everything, "StasisStart")
                assert started.channel.id == channel.id
                await channel.hangup()


async def test_restart_as_another_asterisk(dedicated, expect) -> None:
    spec, run = dedicated
    async with asyncio.timeout(60):
        inst = await run(spec)
        async with ari.connect(inst.http_url, inst.username, inst.password, "swapped") as client:
            old = client.node
            assert old == spec.entity_id
            old_key = client.channels.handle("x").key
            async with client.subscribe() as everything:
                await asyncio.to_thread(stop, spec.name)
                # Same name (so the same credentials) and port, another entity ID.
                swapped = make_spec(
                    spec.name, http_port=spec.http_port, entity_id="02:5a:5a:5a:5a:01"
                )
                await run(swapped)
                await client.wait_connected(timeout=20)
                gap = await expect(everything, "ConnectionGap", timeout=5)

            assert client.node == "02:5a:5a:5a:5a:01" != old
            assert (gap.previous_node, gap.asterisk_id) == (old, client.node)
            assert client.info is not None and client.info.system.entity_id == client.node
            new_key = client.channels.handle("x").key
            assert (old_key.node, new_key.node) == (old, client.node)
            channel = await client.channels.originate("Local/wait@default")
            assert channel.node == client.node  # keys from the new Asterisk carry its ID
            assert (await client.asterisk.ping()).asterisk_id == client.node
            await channel.hangup()
            assert event_type(gap) == "ConnectionGap"
