"""Reply shaping, dispatch errors, event publication and counters, over the in-memory bus.

The publisher and the reply shapes need no Asterisk. The dispatcher tests use an executor whose
Asterisk is unreachable (every refusal must happen before any HTTP request). The server tests
at the end run a real Asterisk behind a `MemoryTransport`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from ari_proxy.ari import Executor, HttpTransport
from ari_proxy.bus import BusMessage, MemoryBroker, MemoryTransport
from ari_proxy.protocol import (
    DialogRouter,
    Key,
    RequestClass,
    Subjects,
    decode_response,
    encode_response,
)
from ari_proxy.server import Server
from ari_proxy.server._counters import Counters
from ari_proxy.server._dispatch import Dispatcher
from ari_proxy.server._publisher import EventPublisher
from ari_proxy.testing import Instance, proxy_config, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`

NODE = "02:aa:bb:cc:dd:ee"
KEY = Key("channel", "c1", NODE, "", "app")


def encoded(data: Any) -> Any:
    return json.loads(msgspec.json.encode(data))


# --- dispatch errors (nothing reaches Asterisk) --------------------------------------------------


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    # Port 9 (discard) on loopback: nothing listens, so any HTTP request would fail loudly.
    http = HttpTransport("http://127.0.0.1:9/ari", "u", "p", timeout=2.0)
    executors = {"app": Executor(http, "app", lambda: NODE)}
    yield Dispatcher(
        executors, DialogRouter(), node=lambda: NODE, request_timeout=2.0, file_limit=lambda: 10
    )
    await http.close()


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"not json", "invalid request: not JSON", "bad_request"),
        (b"[1,2]", "invalid request: Expected `object`", "bad_request"),
        (b"null", "invalid request: Expected `object`", "bad_request"),
        (b'{"kind":5,"key":null}', "invalid request: Expected `str`", "bad_request"),
        (b'{"kind":"ChannelHangup","key":null}', "channel key not supplied", "bad_request"),
        (b'{"kind":"ChannelHangup"}', "channel key not supplied", "bad_request"),
        (b'{"kind":"NoSuchKind","key":{}}', "Not implemented", "not_implemented"),
        (b"{}", "Not implemented", "not_implemented"),
        (
            b'{"kind":"ChannelOriginate","key":{"app":"app"}}',
            "OriginateRequest is mandatory",
            "bad_request",
        ),
        (
            b'{"kind":"ChannelHangup","key":{"id":"x"},"channel_hangup":"normal"}',
            "invalid request: Expected `object | null`, got `str` - at `$.channel_hangup`",
            "bad_request",
        ),
        (
            b'{"kind":"ChannelAnswer","key":{"id":"x","dialog":"a.b.c"}}',
            "key.dialog 'a.b.c' cannot",
            "bad_request",
        ),
        (
            b'{"kind":"ChannelAnswer","key":{"id":"x","app":"a*"}}',
            "key.app 'a*' cannot be a subject token",
            "bad_request",
        ),
        (
            b'{"kind":"EndpointData","key":{"kind":"channel","id":"PJSIP/x"}}',
            "wrong key type",
            "bad_request",
        ),
        (b'{"kind":"ChannelAnswer","key":{"id":".."}}', "cannot be '..'", "bad_request"),
    ],
)
async def test_bad_requests_are_refused_before_asterisk(
    dispatcher: Dispatcher, data: bytes, error: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await dispatcher.dispatch("app", RequestClass.COMMAND, data, "ari.command.app")
    assert response is not None
    assert response.error.startswith(error) or error in response.error
    assert response.code == code
    refused = [r for r in caplog.records if r.getMessage().startswith("refused a request")]
    assert refused and refused[0].levelname == "WARNING"  # faulty input is logged


async def test_requests_for_another_server(dispatcher: Dispatcher) -> None:
    other_node = b'{"kind":"ChannelAnswer","key":{"id":"x","node":"02:00:00:00:00:99"}}'
    other_app = b'{"kind":"ChannelAnswer","key":{"id":"x","app":"other"}}'
    for data in (other_node, other_app):
        # Left to the server they are for (Go runs them anyway: "Go defects fixed", 8)...
        assert await dispatcher.dispatch("app", RequestClass.COMMAND, data, "s") is None
        # ...except on the create queue group, where nobody else will see them.
        response = await dispatcher.dispatch("app", RequestClass.CREATE, data, "s")
        assert response is not None and "reached application 'app'" in response.error
        assert response.code == "bad_request"


async def test_unreachable_asterisk_is_ari_down(dispatcher: Dispatcher) -> None:
    response = await dispatcher.dispatch(
        "app", RequestClass.DATA, b'{"kind":"ChannelData","key":{"id":"c1"}}', "s"
    )
    assert response is not None
    assert (response.error, response.code) == ("ARI connection is down", "ari_down")
    assert "cannot connect to Asterisk" in response.message


# --- event publication ---------------------------------------------------------------------------


def _publisher(
    bus: MemoryTransport, router: DialogRouter, counters: Counters, size: int = 100
) -> EventPublisher:
    return EventPublisher(
        bus,
        Subjects(),
        router,
        applications=("app", "other"),
        node=lambda: NODE,
        counters=counters,
        queue_size=size,
    )


async def _listen(bus: MemoryTransport) -> list[BusMessage]:
    got: list[BusMessage] = []
    await bus.subscribe("ari.>", got.append)
    return got


async def test_every_event_is_published_stamped_and_routed_once() -> None:
    broker = MemoryBroker()
    server_bus, client_bus = broker.transport(), broker.transport()
    await server_bus.connect()
    await client_bus.connect()
    got = await _listen(client_bus)
    counters = Counters()
    router = DialogRouter()
    router.bind("d1", "channel", "c1")
    router.bind("d1", "bridge", "b1")  # one dialog, two of the event's entities
    router.bind("d2", "bridge", "b1")
    publisher = _publisher(server_bus, router, counters)
    publisher.start()
    frames = [
        # Keyless (Go drops it: Go defect 2), no asterisk_id, other application.
        '{"type":"ApplicationReplaced","application":"other","timestamp":"t"}',
        # A type no model knows (Go crashes: Go defect 3), no application at all.
        b'{"type":"FutureEvent","timestamp":"t","channel":{"id":"c1"}}',
        # Both stamped by Asterisk: published byte for byte.
        b'{"type":"ChannelEnteredBridge","timestamp":"t","bridge":{"id":"b1","channels":["c1"]},'
        b'"channel":{"id":"c1"},"asterisk_id":"' + NODE.encode() + b'","application":"app"}',
        b"not json",
        b'{"type":"ChannelDestroyed","timestamp":"t","channel":{"id":"c1"},"application":"app"}',
    ]
    for frame in frames:
        publisher.offer(frame)
    # Then a last event: the publisher takes frames in order and the broker delivers in order,
    # so once it is here, everything the frames above gave rise to is here too.
    publisher.offer(b'{"type":"Last","timestamp":"t","application":"last"}')
    await wait_until(lambda: any(m.subject == f"ari.event.last.{NODE}" for m in got))
    assert got[-1].subject == f"ari.event.last.{NODE}"
    del got[-1]
    events = [(m.subject, json.loads(m.data)) for m in got]
    plain = [e for s, e in events if s.startswith("ari.event.")]
    assert [s for s, _ in events if s.startswith("ari.event.")] == [
        f"ari.event.other.{NODE}",
        f"ari.event.app.{NODE}",
        f"ari.event.app.{NODE}",
        f"ari.event.app.{NODE}",
    ]
    assert all(e["asterisk_id"] == NODE and e["application"] for e in plain)
    entered = [m.data for m in got if m.subject.startswith("ari.event.") and b"Entered" in m.data]
    assert entered == [frames[2]]  # Asterisk's bytes, untouched
    copies = [(s, e["type"]) for s, e in events if s.startswith("ari.dialogevent.")]
    assert sorted(copies) == sorted(
        [
            ("ari.dialogevent.d1", "FutureEvent"),
            ("ari.dialogevent.d1", "ChannelEnteredBridge"),  # once, though bound twice
            ("ari.dialogevent.d2", "ChannelEnteredBridge"),
            ("ari.dialogevent.d1", "ChannelDestroyed"),
        ]
    )
    assert counters.bad_frames == 1
    assert len(router) == 1  # the channel's binding ended with ChannelDestroyed; b1 remains
    await publisher.stop()


async def test_full_queue_drops_the_oldest() -> None:
    broker = MemoryBroker()
    bus = broker.transport()
    await bus.connect()
    client = broker.transport()
    await client.connect()
    got = await _listen(client)
    counters = Counters()
    publisher = _publisher(bus, DialogRouter(), counters, size=3)
    for n in range(5):  # not started: nothing drains the queue
        publisher.offer(json.dumps({"type": "X", "n": n, "application": "app"}))
    assert counters.events_dropped == 2 and publisher.queued == 3
    assert await publisher.flush(1.0) == 0
    await bus.publish("ari.last", b"{}")  # delivered in order: after what flush() published
    await wait_until(lambda: any(m.subject == "ari.last" for m in got))
    assert got[-1].subject == "ari.last"
    assert [json.loads(m.data)["n"] for m in got[:-1]] == [2, 3, 4]


async def test_events_wait_for_the_bus() -> None:
    broker = MemoryBroker()
    bus, client = broker.transport(), broker.transport()
    await bus.connect()
    await client.connect()
    got = await _listen(client)
    counters = Counters()
    publisher = _publisher(bus, DialogRouter(), counters)
    publisher.start()
    broker.cut(bus)
    publisher.offer('{"type":"X","application":"app"}')
    # The offer woke the publisher before this message is delivered (the loop runs both in
    # order), so by then it has seen the frame and the cut link.
    await client.publish("ari.probe", b"{}")
    await wait_until(lambda: any(m.subject == "ari.probe" for m in got))
    assert counters.events_published == 0 and publisher.queued == 1  # held, not lost
    broker.restore(bus)
    await wait_until(lambda: len(got) == 2)  # the probe, then the event
    await publisher.stop()


# --- a server over the memory bus ---------------------------------------------------------------


async def _ask(bus: MemoryTransport, subject: str, data: bytes) -> Any:
    return json.loads(await bus.request(subject, data, timeout=5.0))


async def test_server_on_memory_bus(asterisk: Instance, app_name: str) -> None:
    broker = MemoryBroker()
    server_bus, client = broker.transport(), broker.transport()
    await server_bus.connect()
    await client.connect()
    announcements = await _listen(client)
    config = proxy_config(asterisk, "nats://unused:4222", app_name, max_inflight=1)
    async with Server(config, bus=server_bus) as server:
        node = server.node
        await wait_until(lambda: any(m.subject == "ari.announce" for m in announcements))
        subject = f"ari.data.{app_name}.{node}"
        reply = await _ask(client, subject, b'{"kind":"AsteriskInfo","key":null}')
        assert reply["data"]["asterisk"]["system"]["entity_id"] == node
        # Over max_inflight: "server busy" at once, not silence.
        replies = await asyncio.gather(
            *(_ask(client, subject, b'{"kind":"AsteriskInfo","key":{}}') for _ in range(20))
        )
        busy = [r for r in replies if r.get("code") == "busy"]
        assert busy and busy[0]["error"].startswith("server busy")
        assert len(busy) < 20
        # Bigger than max_request_size.
        big = b'{"kind":"AsteriskInfo","key":{},"pad":"' + b"x" * (1024 * 1024) + b'"}'
        reply = await _ask(client, subject, big)
        assert reply["code"] == "too_large"
        # RecordingStoredFile: a real file, base64 in data.file (our own kind).
        stored = asterisk.host_path(f"{asterisk.spec.spool_dir}/recording/{app_name}.wav")
        stored.write_bytes(b"RIFF" + b"\0" * 100)
        import os

        os.chmod(stored, 0o666)
        key = b'{"kind":"RecordingStoredFile","key":{"kind":"storedrecording","id":"%s"}}' % (
            app_name.encode()
        )
        reply = await _ask(client, subject, key)
        assert base64.b64decode(reply["data"]["file"]) == b"RIFF" + b"\0" * 100, reply
        stats = server.stats()
        assert stats["requests"] == 23
        assert stats["replies"] == 23
        assert stats["errors"].get("busy", 0) == len(busy)  # type: ignore[union-attr]
        assert stats["errors"].get("too_large") == 1  # type: ignore[union-attr]
    # Replies of the too-large check: the file limit applies too.
    small = proxy_config(asterisk, "nats://unused:4222", app_name, max_file_size=10)
    bus2 = broker.transport()
    await bus2.connect()
    async with Server(small, bus=bus2) as server:
        reply = await _ask(client, f"ari.data.{app_name}.{server.node}", key)
        assert reply["code"] == "too_large" and "larger than 10 bytes" in reply["error"]
    stored.unlink()
    await client.close()
    await server_bus.close()
    await bus2.close()


def test_response_round_trip_of_extension_fields() -> None:
    from ari_proxy.server._dispatch import error_response

    response = error_response("Non-2XX response: 404 Not Found", "not_found", status=404)
    assert decode_response(encode_response(response)) == response
