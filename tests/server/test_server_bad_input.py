"""Bad input: every malformed or hostile request gets an error reply, and nothing breaks.

Go's server dies on `{"kind":"ChannelHangup","key":null}` (Go defect 7). Ours answers each case
below with an error, logs it at WARNING (rate-limited, never the body), and keeps serving. A
hypothesis run then throws thousands of generated requests at a live server, and sentinel
entities created first must survive: no hostile ID reached Asterisk as a path of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from server_helpers import body, originate, request, unicast

from ari_proxy.protocol import KINDS, Request
from ari_proxy.server import Server
from ari_proxy.testing import Instance, running_proxy, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`

MARKER = "ZZ-PAYLOAD-MARKER-ZZ"

CASES: list[tuple[str, bytes, str, str]] = [
    ("not JSON", b"this is not json", "invalid request: not JSON", "bad_request"),
    ("JSON array", b"[1, 2, 3]", "invalid request: Expected `object`", "bad_request"),
    ("JSON string", b'"ChannelHangup"', "invalid request: Expected `object`", "bad_request"),
    ("JSON null", b"null", "invalid request: Expected `object`", "bad_request"),
    ("empty body", b"", "invalid request: not JSON", "bad_request"),
    ("null key", b'{"kind":"ChannelHangup","key":null}', "channel key not supplied", "bad_request"),
    ("missing key", b'{"kind":"BridgeDelete"}', "bridge key not supplied", "bad_request"),
    (
        "missing payload",
        b'{"kind":"BridgeAddChannel","key":{"kind":"bridge","id":"b"}}',
        "bridge_add_channel is required",
        "bad_request",
    ),
    (
        "payload of the wrong type",
        b'{"kind":"ChannelDial","key":{"id":"c"},"channel_dial":{"timeout":"soon"}}',
        "invalid request: Expected `int`",
        "bad_request",
    ),
    ("kind of the wrong type", b'{"kind":["x"],"key":{}}', "invalid request", "bad_request"),
    ("unknown kind", b'{"kind":"NoSuchKind","key":{}}', "Not implemented", "not_implemented"),
    (
        "wildcard dialog",
        b'{"kind":"ChannelAnswer","key":{"id":"c","dialog":"d.>"}}',
        "key.dialog 'd.>' cannot name a dialog",
        "bad_request",
    ),
    (
        "wildcard app",
        b'{"kind":"ChannelAnswer","key":{"id":"c","app":"*"}}',
        "key.app '*' cannot be a subject token",
        "bad_request",
    ),
    (
        "dot-segment id",
        b'{"kind":"BridgeDelete","key":{"kind":"bridge","id":".."}}',
        "bridges.destroy: path parameter 'bridgeId' cannot be '..'",
        "bad_request",
    ),
    (
        "path characters in an id",
        b'{"kind":"BridgeDelete","key":{"kind":"bridge","id":"../bridges/x?y=1#z"}}',
        "Non-2XX response: 404 Not found",  # Asterisk's own phrase, lower-case f
        "not_found",
    ),
]


@pytest.mark.parametrize(("name", "data", "error", "code"), CASES, ids=[c[0] for c in CASES])
async def test_each_bad_request_gets_an_error_reply(
    server: Server, nc: NatsClient, name: str, data: bytes, error: str, code: str
) -> None:
    subject = unicast("command", server.applications[0], server.node)
    reply = await request(nc, subject, data)
    assert reply["error"].startswith(error), reply
    assert reply["code"] == code
    # ...and the server still serves.
    info = await request(nc, subject, {"kind": "AsteriskInfo", "key": None})
    assert info["data"]["asterisk"]["system"]["entity_id"] == server.node


async def test_huge_request(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    # NATS itself caps messages at 1 MiB by default, the server's own limit here; a smaller
    # limit shows the refusal over a real bus.
    async with running_proxy(asterisk, nats_url, app_name, max_request_size=64 * 1024) as srv:
        subject = unicast("data", app_name, srv.node)
        data = b'{"kind":"AsteriskInfo","key":{},"x":"' + b"x" * 70_000 + b'"}'
        reply = await request(nc, subject, data)
        assert reply["code"] == "too_large" and reply["error"].startswith("request of 70")
        info = await request(nc, subject, {"kind": "AsteriskInfo", "key": None})
        assert info["error"] == ""


async def test_bad_input_is_logged_without_the_body(
    server: Server, nc: NatsClient, caplog: pytest.LogCaptureFixture
) -> None:
    subject = unicast("command", server.applications[0], server.node)
    caplog.set_level(logging.WARNING, logger="ari_proxy")
    for kind in ("NoSuchKind-1", "NoSuchKind-2"):
        data = {"kind": kind, "key": {}, "extra": MARKER, "channel_hangup": {"reason": MARKER}}
        await request(nc, subject, data)
    await request(nc, subject, b"garbage " + MARKER.encode())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "bad input must be logged"
    assert any(getattr(r, "kind", "") == "NoSuchKind-1" for r in warnings)
    assert all(MARKER not in r.getMessage() for r in caplog.records)
    assert all(MARKER not in json.dumps(vars(r), default=str) for r in caplog.records)


# --- generated traffic -----------------------------------------------------------------------

HOSTILE = ["/", "..", "../", "?", "#", "*", ">", " ", "%2e%2e", "%2F", "\\", "\x00", "&", "="]


def _hostile_id(sentinels: list[str]) -> st.SearchStrategy[str]:
    affixed = st.builds(
        lambda s, h, front: h + s if front else s + h,
        st.sampled_from(sentinels),
        st.sampled_from(HOSTILE),
        st.booleans(),
    )
    return st.one_of(affixed, st.sampled_from(HOSTILE), st.text(max_size=20))


def _requests(sentinels: list[str], app: str, node: str) -> st.SearchStrategy[bytes]:
    kinds = st.one_of(
        st.sampled_from(sorted(KINDS)),
        st.sampled_from(["", "channeldata", "NoSuchKind", "ChannelHangup "]),
        st.text(max_size=12),
    )
    token = st.one_of(st.just(app), st.just(node), st.just(""), st.sampled_from(HOSTILE))
    key = st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "kind": st.sampled_from(["channel", "bridge", "", "x"]),
                "id": _hostile_id(sentinels),
                "node": token,
                "app": token,
                "dialog": st.one_of(st.just("d1"), st.sampled_from(HOSTILE)),
            },
        ),
    )
    scalar = st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=10), _hostile_id(sentinels)
    )
    payload = st.recursive(
        scalar, lambda inner: st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=6
    )
    fields = sorted(f for f in Request.__struct_fields__ if f not in ("kind", "key"))
    structured = st.builds(
        lambda k, key, field, value: body({"kind": k, "key": key, field: value}),
        kinds,
        key,
        st.sampled_from(fields),
        payload,
    )
    return st.one_of(structured, st.binary(max_size=64))


def generate(sentinels: list[str], app: str, node: str, count: int) -> list[bytes]:
    """`count` generated requests (hypothesis drives the generation, deterministically)."""
    found: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_requests(sentinels, app, node))
    def collect(data: bytes) -> None:
        found.append(data)

    collect()
    return found


@pytest.mark.slow
async def test_generated_requests_break_nothing(server: Server, nc: NatsClient) -> None:
    app, node = server.applications[0], server.node
    bridge, channel = f"sentinel-{app}-br", f"sentinel-{app}-ch"
    create = unicast("create", app, node)
    assert (
        await request(
            nc,
            create,
            {
                "kind": "BridgeCreate",
                "key": {"kind": "bridge", "id": bridge},
                "bridge_create": {"type": "mixing"},
            },
        )
    )["error"] == ""
    assert (
        await request(
            nc,
            create,
            {"kind": "ChannelOriginate", "key": {}, "channel_originate": originate(app, channel)},
        )
    )["error"] == ""
    messages = generate([bridge, channel], app, node, 2500)
    assert len(messages) >= 2000
    replies: list[Any] = []

    async def on_reply(msg: Msg) -> None:
        replies.append(json.loads(msg.data))

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox + ".*", cb=on_reply)
    counters = server.counters
    received, replied, ignored = counters.requests, counters.replies, counters.ignored
    subjects = [unicast(cls, app, node) for cls in ("get", "data", "command", "create")]
    for index, data in enumerate(messages):
        await nc.publish(subjects[index % 4], data, reply=f"{inbox}.{index}")
        if index % 100 == 99:
            await nc.flush()
            await asyncio.sleep(0.05)  # pacing: bursts of 100, not one flood
    await nc.flush()
    # Every request handled: the server took them all and answered or ignored each (requests
    # run concurrently, so a last request's reply would not mean the others' came)...
    await wait_until(lambda: counters.requests - received >= len(messages), timeout=30)
    await wait_until(
        lambda: (counters.replies - replied) + (counters.ignored - ignored) >= len(messages),
        timeout=30,
    )
    # ... and every reply it sent has reached us.
    await wait_until(lambda: len(replies) >= counters.replies - replied)
    await sub.unsubscribe()
    # Every request got a reply, except those addressed (validly) to another app or node.
    assert len(replies) + server.counters.ignored >= len(messages) - server.counters.errors.get(
        "busy", 0
    )
    assert all(isinstance(r.get("error"), str) for r in replies)
    assert all(r["code"] for r in replies if r["error"])
    # The server still serves, and the sentinels survived.
    data_subject = unicast("data", app, node)
    info = await request(nc, data_subject, {"kind": "AsteriskInfo", "key": None})
    assert info["data"]["asterisk"]["system"]["entity_id"] == node
    got = await request(
        nc, data_subject, {"kind": "BridgeData", "key": {"kind": "bridge", "id": bridge}}
    )
    assert got["data"]["bridge"]["id"] == bridge
    got = await request(
        nc, data_subject, {"kind": "ChannelData", "key": {"kind": "channel", "id": channel}}
    )
    assert got["data"]["channel"]["id"] == channel
    assert server.stats()["inflight"] == 0
    for kind, key in (("ChannelHangup", "channel"), ("BridgeDelete", "bridge")):
        ident = channel if key == "channel" else bridge
        await request(
            nc, unicast("command", app, node), {"kind": kind, "key": {"kind": key, "id": ident}}
        )
