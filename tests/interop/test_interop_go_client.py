"""The real Go client (`ari-goclient`, CyCoreSystems/ari-proxy v5) against our server.

Every op of the Go client program runs against our in-process server, once over NATS and once
over RabbitMQ, and what it prints is checked against Asterisk itself (native ARI) or against
what our own proxy client sees on the same bus.

The buses are shared with whatever else runs on this machine, and several Go requests are
broadcasts answered first-come by every server on the bus (`info`, `channels`, `bridges`, the
benchmark's `Info`): `_ours()` repeats such an op only while the answer comes from another
server, and our server's reply counter shows it answered every one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import urllib.error
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy import event_type
from ari_proxy.bus import BusMessage
from ari_proxy.bus import connect as connect_bus
from ari_proxy.server import Server
from ari_proxy.testing import GoReference, Instance

pytest_plugins = ["interop_fixtures"]
pytestmark = pytest.mark.interop(client="go", server="ours")

Line = dict[str, Any]

# The full life of a channel in the application, in the order Asterisk reports it.
LIFE = ("StasisStart", "StasisEnd", "ChannelDestroyed")


@dataclass(frozen=True)
class GoClient:
    """`ari-goclient` for one application on one bus."""

    goref: GoReference
    bus_url: str
    application: str

    async def __call__(self, op: str, *args: str, check: bool = True) -> list[Line]:
        return await self.goref.client(
            op, *args, bus_url=self.bus_url, application=self.application, check=check
        )

    async def result(self, op: str, *args: str) -> Any:
        """The `result` of an op that prints exactly one line."""
        lines = await self(op, *args)
        assert len(lines) == 1 and set(lines[0]) == {"result"}, lines
        return lines[0]["result"]


@pytest.fixture
def go(goref: GoReference, bus_url: str, app_name: str) -> GoClient:
    return GoClient(goref, bus_url, app_name)


@pytest_asyncio.fixture
async def client(
    our_server: Server, bus_url: str, app_name: str
) -> AsyncIterator[ari_proxy.Client]:
    """Our proxy client on the same bus and application (to cause and observe things)."""
    async with ari_proxy.connect(bus_url, application=app_name, timeout=5.0) as proxied:
        yield proxied


async def _ours(
    run: Callable[[], Awaitable[Any]], is_ours: Callable[[Any], bool], attempts: int = 5
) -> Any:
    """Run a broadcast op until a server of ours answers it (others may share the bus)."""
    seen = []
    for _ in range(attempts):
        answer = await run()
        if is_ours(answer):
            return answer
        seen.append(answer)
    pytest.fail(f"no answer from our server in {attempts} broadcasts: {seen!r:.2000}")


async def _native(asterisk: Instance, path: str) -> Any:
    """GET an ARI path on Asterisk itself; None for 404."""
    try:
        return await asyncio.to_thread(asterisk.get, path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


async def _gone(asterisk: Instance, channel_id: str) -> None:
    """Wait until Asterisk no longer knows the channel (it sends ChannelDestroyed a moment
    before the channel leaves its registry)."""
    async with asyncio.timeout(5):
        while await _native(asterisk, f"/channels/{channel_id}") is not None:
            await asyncio.sleep(0.02)


async def in_stasis(client: ari_proxy.Client) -> ari_proxy.ChannelHandle:
    """A `Local/wait` channel of our own, returned once it is in the application."""
    staged = await client.channels.stage_originate("Local/wait@default")
    async with staged.subscribe("StasisStart") as started:
        channel = await staged.execute()
        await started.next(timeout=10)
    return channel


@contextlib.asynccontextmanager
async def wiretap(bus_url: str, subject: str) -> AsyncIterator[list[BusMessage]]:
    """Every request sent on `subject` while the block runs (a copy: nothing is answered)."""
    bus = connect_bus(bus_url, name=f"wiretap-{secrets.token_hex(3)}")
    await bus.connect()
    got: list[BusMessage] = []
    try:
        await bus.serve(subject, got.append)
        yield got
    finally:
        await bus.close()


def _ids(events: Iterable[Any]) -> list[tuple[str, str]]:
    """(type, channel ID) of channel events."""
    return [(event_type(e), e.channel.id) for e in events]


# --- info -----------------------------------------------------------------------------------


async def test_info_broadcast_answered_with_our_asterisk(
    go: GoClient, our_server: Server, asterisk: Instance, bus_url: str
) -> None:
    before = our_server.counters.replies

    def from_our_asterisk(info: Any) -> bool:
        return bool(info["system"]["entity_id"] == asterisk.entity_id)

    async with wiretap(bus_url, "ari.data") as sent:
        info = await _ours(lambda: go.result("info"), from_our_asterisk)
    # Go sent it as a broadcast, without app or node in the subject, and our server answered.
    requests = [json.loads(m.data) for m in sent if m.subject == "ari.data"]
    assert {"kind": "AsteriskInfo", "key": {}} in requests, sent
    assert our_server.counters.replies > before
    native = cast(dict[str, Any], await _native(asterisk, "/asterisk/info"))
    assert info["system"] == {
        "entity_id": asterisk.entity_id,
        "version": native["system"]["version"],
    }
    assert info["system"]["version"].startswith("22.")
    # Go decoded the whole object: every section of Asterisk's answer made it through.
    assert set(info) >= {"build", "config", "status", "system"}
    assert info["build"]["os"] == native["build"]["os"]
    assert info["config"]["default_language"] == native["config"]["default_language"]


# --- channels and bridges ---------------------------------------------------------------------


async def test_channel_and_bridge_lists_hold_go_keys(
    go: GoClient, client: ari_proxy.Client, our_server: Server, app_name: str
) -> None:
    node = our_server.node
    channel = await in_stasis(client)
    bridge = await client.bridges.create("mixing")
    try:

        def ours(keys: Any) -> bool:  # a list answered by a server of our application
            return bool(keys) and all(k.get("app") == app_name for k in keys)

        channels = await _ours(lambda: go.result("channels"), ours)
        bridges = await _ours(lambda: go.result("bridges"), ours)
    finally:
        await channel.hangup()
        await bridge.destroy()
    # Go's key shape exactly: kind, id, node, app (an empty dialog is left out).
    assert {"kind": "channel", "id": channel.id, "node": node, "app": app_name} in channels
    assert {"kind": "bridge", "id": bridge.id, "node": node, "app": app_name} in bridges
    for keys, kind in ((channels, "channel"), (bridges, "bridge")):
        for key in keys:
            assert set(key) == {"kind", "id", "node", "app"}, key
            assert (key["kind"], key["node"]) == (kind, node), key
            assert key["id"], key


# --- originate --------------------------------------------------------------------------------


async def test_originate_enters_the_application(
    go: GoClient, client: ari_proxy.Client, asterisk: Instance, app_name: str
) -> None:
    async with client.subscribe("StasisStart") as started:
        channel_id = await go.result("originate", "-endpoint", "Local/wait@default")
        assert isinstance(channel_id, str) and channel_id
        try:
            start = await started.next(timeout=10)
            assert _ids([start]) == [("StasisStart", channel_id)]
            assert start.asterisk_id == asterisk.entity_id
            # Asterisk has the channel, and in our application.
            native = await _native(asterisk, f"/channels/{channel_id}")
            assert native is not None and native["name"].startswith("Local/wait@default-")
            app = await _native(asterisk, f"/applications/{app_name}")
            assert channel_id in app["channel_ids"]
            # ... and so does our server, asked through our own client.
            data = await client.channels.handle(channel_id).data()
            assert (data.id, data.state) == (channel_id, "Up")
        finally:
            await client.channels.handle(channel_id).hangup()
    await _gone(asterisk, channel_id)


async def test_originate_then_hangup(
    go: GoClient, client: ari_proxy.Client, asterisk: Instance
) -> None:
    lives: list[list[str]] = []
    for _ in range(3):
        async with client.subscribe(*LIFE) as events:
            # The Go client hangs up at once, on the unicast subject of the key it was given.
            channel_id = await go.result("originate", "-hangup")
            seen: list[tuple[str, str]] = []
            async with asyncio.timeout(10):
                while ("ChannelDestroyed", channel_id) not in seen:
                    seen += _ids([await events.next()])
        await _gone(asterisk, channel_id)
        lives.append([t for t, c in seen if c == channel_id])
        if lives[-1] == list(LIFE):
            return
        # Asterisk answers an originate before the channel is up: a hangup that beats the
        # answer (by a few ms here) ends the channel before it enters the application.
        assert lives[-1] == ["ChannelDestroyed"], lives
    pytest.fail(f"no Go-originated channel lived its life in the application: {lives}")


async def test_originate_failure_reads_as_go_error(
    go: GoClient, our_server: Server, bus_url: str, app_name: str
) -> None:
    errors = our_server.counters.errors["ari_error"]
    for endpoint in ("PJSIP/nobody", "Bogus/x"):
        lines = await go("originate", "-endpoint", endpoint, check=False)
        assert len(lines) == 1 and set(lines[0]) == {"error"}, lines
        message = lines[0]["error"]
        if bus_url.startswith("nats"):
            # Asterisk refuses with 500; the wording is the Go ARI client's, verbatim.
            assert message == "Non-2XX response: 500 Internal Server Error"
        else:
            # Over RabbitMQ the Go client replaces the error of a broadcast with "no data"
            # while it knows no server yet, as it does against the Go server: below, what our
            # server put on the bus.
            assert message in ("no data", "Non-2XX response: 500 Internal Server Error")
    assert our_server.counters.errors["ari_error"] == errors + 2
    # The reply itself, as a Go client sends the request (unicast on the create subject).
    bus = connect_bus(bus_url, name=f"interop-{app_name}")
    await bus.connect()
    try:
        request = {
            "kind": "ChannelOriginate",
            "key": {"app": app_name},
            "channel_originate": {
                "originate_request": {
                    "endpoint": "PJSIP/nobody",
                    "app": app_name,
                    "channelId": f"{app_name}-x",
                }
            },
        }
        subject = f"ari.create.{app_name}.{our_server.node}"
        reply = json.loads(await bus.request(subject, json.dumps(request).encode(), timeout=5))
    finally:
        await bus.close()
    assert reply["error"] == "Non-2XX response: 500 Internal Server Error", reply


# --- events -----------------------------------------------------------------------------------


async def _calls_while(process: asyncio.Task[list[Line]], client: ari_proxy.Client) -> list[str]:
    """Originate and hang up a channel, one after the other, until `process` ends."""
    ids: list[str] = []
    while not process.done():
        channel = await in_stasis(client)
        ids.append(channel.id)
        async with channel.subscribe("ChannelDestroyed") as destroyed:
            await channel.hangup()
            await destroyed.next(timeout=10)
        await asyncio.sleep(0.3)  # pacing only: the Go side is waited for by its own end
    return ids


@pytest.mark.parametrize("scope", ["app", "all"])
async def test_events_subscription(
    go: GoClient,
    client: ari_proxy.Client,
    our_server: Server,
    app_name: str,
    bus_url: str,
    scope: str,
) -> None:
    process = asyncio.get_running_loop().create_task(
        go("events", "-duration", "3s", "-scope", scope)
    )
    try:
        ids = await _calls_while(process, client)
    finally:
        await asyncio.wait([process])  # it ends by itself after -duration
        if bus_url.startswith("amqp"):
            await _delete_queue(bus_url, app_name)
    lines = process.result()
    assert all("type" in line and "error" not in line for line in lines), lines[:3]
    if scope == "app":
        assert {line.get("application") for line in lines} == {app_name}
    by_channel = {
        i: [line["type"] for line in lines if (line.get("channel") or {}).get("id") == i]
        for i in ids
    }
    seen = [i for i in ids if by_channel[i]]
    assert seen, f"the Go client printed no event of our {len(ids)} calls"
    # Between the first and the last call it saw anything of, nothing is missing: each call
    # ended (ChannelDestroyed) before the next began.
    full = ids[ids.index(seen[0]) : ids.index(seen[-1]) + 1]
    complete = [i for i in full if _in_order(by_channel[i], LIFE)]
    assert complete, by_channel
    assert set(full[1:-1]) <= set(complete), by_channel
    ours = [line for line in lines if (line.get("channel") or {}).get("id") in ids]
    assert all(
        line["application"] == app_name and line["asterisk_id"] == our_server.node for line in ours
    )


def _in_order(types: list[str], wanted: Iterable[str]) -> bool:
    """Whether `wanted` occurs in `types` as a subsequence."""
    rest = iter(types)
    return all(any(t == w for t in rest) for w in wanted)


async def _delete_queue(bus_url: str, name: str) -> None:
    """Remove the durable queue a Go events subscription leaves behind on RabbitMQ."""
    connection = await aio_pika.connect(bus_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


# --- bench ------------------------------------------------------------------------------------


async def test_bench(go: GoClient, our_server: Server) -> None:
    before = our_server.counters.replies
    # Separate processes: over RabbitMQ the Go client leaks an AMQP channel per request.
    [serial] = await go("bench", "-n", "200", "-conc", "8", "-phase", "serial")
    [conc] = await go("bench", "-n", "200", "-conc", "8", "-phase", "conc")
    assert (serial["phase"], conc["phase"]) == ("serial", "conc")
    assert serial["n"] == conc["n"] == 200 and serial["conc"] == conc["conc"] == 8
    assert 0 < serial["serial_p50_us"] <= serial["serial_p99_us"] < 500_000
    assert conc["conc_rps"] > 0
    # Every one of the 400 broadcasts was answered by our server.
    assert our_server.counters.replies - before >= 400
