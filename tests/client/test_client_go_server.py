"""Our proxy client against a Go ari-proxy v5 server, emulated from the recorded Go replies.

No Go toolchain can be built here (no module proxy), so a small responder plays the Go server:
it answers pings with Go's announcement and each request with the reply the real Go server gave
to the same request in ../shared/vectors/go-v5-nats.jsonl. The client must read every Go shape
(`config`, `log`, keys without ids, error strings without status) into the same results and
exceptions as against our server.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.bus import BusMessage, MemoryBroker
from ari_proxy.client import ProxyBackend, ProxyClient
from ari_proxy.protocol import decode_request

VECTORS = Path(os.environ["ARI_PROXY_VECTORS"]) / "go-v5-nats.jsonl"
NODE = "02:fc:00:00:00:01"


def recorded_replies() -> dict[tuple[str, str], bytes]:
    """(kind, key id) -> the raw reply the Go server sent (the last one recorded)."""
    records = [json.loads(line) for line in VECTORS.read_text().splitlines()]
    by_seq = {r["seq"]: r for r in records}
    replies: dict[tuple[str, str], bytes] = {}
    for record in records:
        if record["role"] != "reply":
            continue
        request = by_seq[record["for_seq"]]["body"]
        if not isinstance(request, dict) or not isinstance(request.get("key"), dict):
            continue
        raw = record.get("raw") or json.dumps(record["body"], separators=(",", ":"))
        replies[(request["kind"], request["key"].get("id", ""))] = raw.encode()
    return replies


@pytest_asyncio.fixture
async def go_client() -> AsyncIterator[ProxyClient]:
    broker = MemoryBroker()
    server_bus, client_bus = broker.transport(), broker.transport()
    await server_bus.connect()
    await client_bus.connect()
    replies = recorded_replies()

    async def answer(message: BusMessage) -> None:
        request = decode_request(message.data)
        key = request.key.id if request.key is not None else ""
        reply = replies.get((request.kind, key), b'{"error":"Not implemented"}')
        await server_bus.reply(message, reply)

    async def announce(message: BusMessage) -> None:
        await server_bus.publish(
            "ari.announce", b'{"node":"%s","application":"test"}' % NODE.encode()
        )

    for cls in ("get", "data", "command"):
        for subject in (f"ari.{cls}", f"ari.{cls}.test", f"ari.{cls}.test.{NODE}"):
            await server_bus.serve(subject, answer)
    for subject in ("ari.create", "ari.create.test", f"ari.create.test.{NODE}"):
        await server_bus.serve(subject, answer, group="ariproxy")
    await server_bus.on_ping("ari.ping", announce)
    backend = ProxyBackend(client_bus, "test", timeout=1.0)
    await backend.start()
    client = ProxyClient(backend, timeout=1.0)
    try:
        yield client
    finally:
        await client.close()
        await server_bus.close()


async def test_discovers_the_go_server(go_client: ProxyClient) -> None:
    assert [(n.node, n.application) for n in go_client.nodes()] == [(NODE, "test")]


async def test_reads_go_data_shapes(go_client: ProxyClient) -> None:
    info = await go_client.asterisk.info()
    assert info.system is not None and info.system.entity_id == NODE
    module = await go_client.asterisk.modules.handle("res_stasis.so").data()
    assert (module.name, module.status) == ("res_stasis.so", "Running")
    # Go's LogData says `levels`/`types`; the client gives ARI's LogChannel.
    log = await go_client.asterisk.logging.handle("/var/log/asterisk/messages.log").data()
    assert (log.channel, log.status) == ("/var/log/asterisk/messages.log", "Enabled")
    assert await go_client.asterisk.get_variable("GOLDEN_VECTOR_VAR") == "golden-42"
    # An unset global variable: Go sends "data":{}.
    assert await go_client.asterisk.get_variable("GOLDEN_VECTOR_UNSET") == ""
    app = await go_client.applications.handle("test").data()
    assert app.name == "test"


async def test_reads_go_lists(go_client: ProxyClient) -> None:
    modules = await go_client.asterisk.modules.list()
    assert "res_stasis.so" in {m.id for m in modules}
    assert all(m.node == NODE and m.key.app == "test" for m in modules)
    # Go's SoundList keys carry no id (its weakness): the client still returns one per sound.
    sounds = await go_client.sounds.list()
    assert len(sounds) == 568
    endpoints = await go_client.endpoints.list()
    assert [e.id for e in endpoints] == ["PJSIP/golden-3h5hyb"]


@pytest.mark.parametrize(
    ("call", "error", "status"),
    [
        (
            lambda c: c.asterisk.modules.handle("res_golden_nonexistent.so").data(),
            ari_proxy.NotFoundError,
            404,
        ),
        (lambda c: c.asterisk.modules.handle("res_stasis.so").load(), ari_proxy.ConflictError, 409),
        (lambda c: c.sounds.data("golden-nonexistent"), ari_proxy.NotFoundError, 404),
        (
            lambda c: c.applications.handle("golden-no-such-app").data(),
            ari_proxy.NotFoundError,
            404,
        ),
        (
            lambda c: c.asterisk.logging.handle("golden-no-such-log").data(),
            ari_proxy.NotFoundError,
            404,
        ),
        (
            lambda c: c.asterisk.config.update(
                "res_pjsip", "endpoint", "golden-3h5hyb", {"allow": "ulaw"}
            ),
            ari_proxy.ForbiddenError,
            403,
        ),
    ],
)
async def test_maps_go_error_strings_to_the_same_exceptions(
    go_client: ProxyClient, call: object, error: type[Exception], status: int
) -> None:
    with pytest.raises(error) as info:
        await call(go_client)  # type: ignore[operator]
    assert info.value.status == status  # type: ignore[attr-defined]


async def test_go_decode_failures_are_reported_not_crashed(go_client: ProxyClient) -> None:
    # Go cannot read Asterisk's 404 body for list calls and says so in plain text.
    with pytest.raises(ari_proxy.AriError) as info:
        await go_client.mailboxes.list()
    assert "failed to decode response" in str(info.value)


async def test_unknown_kind_reply(go_client: ProxyClient) -> None:
    with pytest.raises(ari_proxy.UnknownKindError):
        await go_client.channels.handle("never-recorded").rtp_statistics()


def test_the_vectors_are_there() -> None:
    assert VECTORS.exists()
    assert msgspec.json.decode(VECTORS.read_text().splitlines()[0])["role"] == "ping"


async def test_listen_takes_calls_from_a_go_server(go_client: ProxyClient) -> None:
    # A Go server publishes StasisStart only on the application's event subject (it announces
    # no `listen` feature), so the client takes calls from there too.
    backend = go_client._backend
    calls = await go_client.listen()
    try:
        assert backend.bus_subscriptions >= 2  # the listen subject and the event subject
        event = (
            b'{"type":"StasisStart","application":"test","asterisk_id":"%s",'
            b'"timestamp":"2026-11-26T05:55:00.000+0000","args":[],'
            b'"channel":{"id":"go-call-1","name":"PJSIP/x-1","state":"Ring"}}' % NODE.encode()
        )
        publisher = backend.transport  # any connection on the broker can publish
        await publisher.publish(f"ari.event.test.{NODE}", event)
        async with asyncio.timeout(2):
            event_in = await calls._sub.next()
        assert event_in.channel.id == "go-call-1"  # type: ignore[attr-defined]
        # A ChannelVarset of the same node is not a call.
        assert calls._sub.qsize() == 0
    finally:
        calls.close()
