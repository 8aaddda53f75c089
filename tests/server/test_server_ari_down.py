"""ARI outages: refuse at once while down, reconnect and announce by itself, follow a new node.

Each test starts its own Asterisk (not the session's), since it stops and restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from server_helpers import collect, originate, request, unicast

from ari_proxy import __version__
from ari_proxy.testing import Instance, make_spec, running_proxy, start, stop, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`


@pytest.fixture
def own_asterisk() -> Iterator[Instance]:
    inst = start(make_spec(f"srv-down-{os.getpid()}"))
    try:
        yield inst
    finally:
        stop(inst.name)


async def test_ari_down_then_back(
    own_asterisk: Instance,
    nats_url: str,
    app_name: str,
    nc: NatsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst = own_asterisk
    async with running_proxy(inst, nats_url, app_name) as server:
        node = server.node
        subject = unicast("data", app_name, node)
        async with collect(nc, "ari.announce") as announcements:

            def ours() -> list[Any]:  # other suites' servers answer pings on this NATS too
                return [a for a in announcements.json() if a["application"] == app_name]

            await asyncio.to_thread(stop, inst.name)
            await wait_until(lambda: not server.ari_connected)
            began = time.monotonic()
            reply = await request(nc, subject, {"kind": "AsteriskInfo", "key": None})
            assert time.monotonic() - began < 0.5  # at once, not after a timeout
            assert reply == {"error": "ARI connection is down", "code": "ari_down", "node": node}
            before, announced = len(ours()), server.counters.announcements
            # A ping is answered by an announcement attempt: tell the test when one has run.
            attempted = asyncio.Event()
            round_ = server.announcer._round  # what a ping's coalesced round runs

            async def round_and_tell() -> None:
                await round_()
                attempted.set()

            monkeypatch.setattr(server.announcer, "_round", round_and_tell)
            await nc.publish("ari.ping", b'{"kind":"","key":null}')
            await asyncio.wait_for(attempted.wait(), 5)
            # No announcement while ARI is down (one is counted as soon as it is published).
            assert server.counters.announcements == announced
            await nc.flush()
            assert len(ours()) == before
            await asyncio.to_thread(start, inst.spec)
            await wait_until(lambda: server.ari_connected, timeout=20)
            await announcements.wait_for(lambda: len(ours()) > before)
            assert ours()[-1] == {
                "node": node,
                "application": app_name,
                "features": ["listen", "handover"],
                "epoch": server.epoch,
                "version": __version__,  # the same process: the same epoch
            }
        reply = await request(nc, subject, {"kind": "AsteriskInfo", "key": None})
        assert reply["data"]["asterisk"]["system"]["entity_id"] == node
        assert server.stats()["errors"]["ari_down"] == 1  # type: ignore[index]


async def test_new_entity_id_moves_the_subscriptions(
    own_asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    inst = own_asterisk
    async with running_proxy(inst, nats_url, app_name, entity_check_interval=1.0) as server:
        old = server.node
        await asyncio.to_thread(stop, inst.name)
        await wait_until(lambda: not server.ari_connected)
        new_spec = dataclasses.replace(inst.spec, entity_id="02:00:de:ad:be:ef")
        async with collect(nc, "ari.announce", f"ari.event.{app_name}.>") as got:
            await asyncio.to_thread(start, new_spec)
            await wait_until(lambda: server.node == "02:00:de:ad:be:ef", timeout=20)
            new = server.node
            await got.wait_for(
                lambda: (
                    {
                        "node": new,
                        "application": app_name,
                        "features": ["listen", "handover"],
                        "epoch": server.epoch,
                        "version": __version__,
                    }
                    in got.json("ari.announce")
                )
            )
            # The node-level subjects moved: the new one answers, the old one has nobody.
            await wait_until(lambda: server.stats()["node_changes"] == 1)
            for _ in range(50):  # bounded: until the new subjects are subscribed
                with contextlib.suppress(nats.errors.NoRespondersError):
                    reply = await request(
                        nc, unicast("data", app_name, new), {"kind": "AsteriskInfo", "key": None}
                    )
                    break
                await asyncio.sleep(0.1)
            assert reply["data"]["asterisk"]["system"]["entity_id"] == new
            with pytest.raises(nats.errors.NoRespondersError):
                await request(
                    nc, unicast("data", app_name, old), {"kind": "AsteriskInfo", "key": None}
                )
            # Keys and events carry the new node.
            channel = f"{app_name}-after"
            reply = await request(
                nc,
                unicast("create", app_name, new),
                {
                    "kind": "ChannelOriginate",
                    "key": {},
                    "channel_originate": originate(app_name, channel),
                },
            )
            assert reply["key"]["node"] == new
            await got.wait_for(
                lambda: any(s == f"ari.event.{app_name}.{new}" for s, _ in got.messages)
            )
            assert not any(s == f"ari.event.{app_name}.{old}" for s, _ in got.messages)
            await request(
                nc,
                unicast("command", app_name, new),
                {"kind": "ChannelHangup", "key": {"kind": "channel", "id": channel}},
            )
