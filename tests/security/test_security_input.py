"""Input is validated at the edge (issue 18, point 1).

A control character (NUL, CR, LF, anything below 0x20, DEL) in an ID or a name, and an integer
outside its ARI parameter's range, are refused by both clients before anything is sent
(`InvalidRequestError` naming the field) and by the server (`bad_request` naming the field),
which never asks Asterisk. Before, destroying the bridge `victimbr\\0zzz` destroyed `victimbr`
(the ID went out as `%00` and Asterisk cut it there), and an originate with `timeout=10**26`
created a channel. Log lines stay one JSON object per line whatever a value holds.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from security_kit import request

import ari_proxy
from ari_proxy import InvalidRequestError
from ari_proxy.ari import Executor, HttpTransport
from ari_proxy.bus import BusMessage, MemoryBroker
from ari_proxy.client import ProxyBackend, ProxyClient
from ari_proxy.protocol import (
    KINDS,
    ApplicationSubscribe,
    BridgeAddChannel,
    ChannelOriginate,
    ChannelPlay,
    ChannelSendDTMF,
    ChannelVariable,
    DialogRouter,
    DTMFOptions,
    Key,
    MailboxUpdate,
    OriginateRequest,
    RequestClass,
    Variables,
    check_request,
)
from ari_proxy.server import Server
from ari_proxy.server._dispatch import Dispatcher
from ari_proxy.server._logging import JsonFormatter
from ari_proxy.spec import (
    INT_MAX,
    INT_MIN,
    OPERATIONS,
    build_path,
    build_query,
    check_query,
    int_bounds,
)
from ari_proxy.testing import Instance

pytest_plugins = ["security_fixtures"]

NODE = "02:aa:bb:cc:dd:ee"
CONTROLS = ["\x00", "\n", "\r", "\t", "\x1b", "\x1f", "\x7f"]


# --- the shared check ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "node", "dialog", "app"])
@pytest.mark.parametrize("char", CONTROLS, ids=[f"0x{ord(c):02x}" for c in CONTROLS])
def test_a_control_character_in_any_key_field_is_refused(field: str, char: str) -> None:
    values = {"kind": "bridge", "id": "b1", "node": NODE, "dialog": "d1", "app": "app"}
    values[field] = f"victim{char}zzz"
    with pytest.raises(InvalidRequestError) as refused:
        check_request("BridgeDelete", Key(**values), None)
    assert f"key.{field}" in str(refused.value)
    assert f"0x{ord(char):02x}" in str(refused.value)
    # Kinds that make no ARI call (bindings only) are checked too.
    with pytest.raises(InvalidRequestError, match=f"key.{field}"):
        check_request("ChannelSubscribe", Key(**{**values, "kind": "channel"}), None)


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("ChannelPlay", ChannelPlay(playback_id="pb\x00x", media_uri="sound:beep"), "playbackId"),
        ("ChannelStagePlay", ChannelPlay(playback_id="pb\nx", media_uri="sound:x"), "playbackId"),
        ("BridgeAddChannel", BridgeAddChannel(channel="c\r\n"), "'channel'"),
        (
            "ApplicationSubscribe",
            ApplicationSubscribe(event_source="channel:x\x00y"),
            "eventSource",
        ),
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", originator="o\n")),
            "originator",
        ),
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", app="a\x7f")),
            "'app'",
        ),
        ("ChannelVariableGet", ChannelVariable(name="X\nY"), "variable"),
        ("ChannelVariablesSet", Variables(values={"A\x00": "v"}), "variable name"),
    ],
)
def test_a_control_character_in_a_payload_id_or_name_is_refused(
    kind: str, payload: Any, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        check_request(kind, Key("channel", "c1"), payload)
    assert field in str(refused.value) and "control character" in str(refused.value)


def test_free_text_keeps_its_line_breaks_but_never_a_nul() -> None:
    key = Key("channel", "c1")
    check_request("ChannelVariableSet", key, ChannelVariable(name="X", value="a\nb\tc"))
    check_request(
        "ChannelOriginate",
        key,
        ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", app_args="a\nb")),
    )
    with pytest.raises(InvalidRequestError, match="'value' contains a NUL"):
        check_request("ChannelVariableSet", key, ChannelVariable(name="X", value="a\x00b"))


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", timeout=10**26)),
            "'timeout'",
        ),
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", timeout=-2)),
            "'timeout'",
        ),
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", priority=2**31)),
            "'priority'",
        ),
        (
            "ChannelSendDTMF",
            ChannelSendDTMF(dtmf="1", options=DTMFOptions(before=-5_000_000)),
            "'before'",
        ),
        ("MailboxUpdate", MailboxUpdate(old=0, new=2**31), "'newMessages'"),
        ("MailboxUpdate", MailboxUpdate(old=-1, new=1), "'oldMessages'"),
        (
            "ChannelOriginate",
            ChannelOriginate(originate_request=OriginateRequest(endpoint="L/x", timeout=10**5000)),
            "an integer of about 5001 digits",
        ),
    ],
)
def test_an_integer_outside_its_ari_range_is_refused(kind: str, payload: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        check_request(kind, Key("channel", "c1"), payload)
    assert field in str(refused.value)
    assert len(str(refused.value)) < 300  # a huge integer is not repeated


def test_integers_at_their_bounds_pass() -> None:
    originate = OriginateRequest(endpoint="L/x", timeout=-1, priority=INT_MAX)
    check_request("ChannelOriginate", Key(), ChannelOriginate(originate_request=originate))
    check_request("MailboxUpdate", Key("mailbox", "m"), MailboxUpdate(old=0, new=INT_MAX))


def test_every_integer_parameter_has_c_int_bounds() -> None:
    seen = 0
    for op in OPERATIONS.values():
        for param in op.query:
            if param.type not in ("int", "long"):
                continue
            seen += 1
            low, high = int_bounds(param)
            assert INT_MIN <= low <= 0 <= high == INT_MAX, (op.name, param.name)
            values = {param.name: high + 1}
            with pytest.raises(ValueError, match=param.name):
                check_query(op, values)
            # A decimal string is an integer too, and judged the same.
            with pytest.raises(ValueError, match=param.name):
                check_query(op, {param.name: str(high + 1)})
    assert seen >= 20


def test_the_http_request_builders_refuse_the_same() -> None:
    destroy = OPERATIONS["bridges.destroy"]
    with pytest.raises(ValueError, match=r"'bridgeId' .* control character \(0x00\)"):
        build_path(destroy, {"bridgeId": "victimbr\x00zzz"})
    assert build_path(destroy, {"bridgeId": "a/b c"}) == "/bridges/a%2Fb%20c"
    originate = OPERATIONS["channels.originate"]
    with pytest.raises(ValueError, match="'timeout'"):
        build_query(originate, {"endpoint": "L/x", "timeout": 10**26})
    with pytest.raises(ValueError, match="whole number"):
        build_query(originate, {"endpoint": "L/x", "timeout": "1e30"})
    assert build_query(originate, {"endpoint": "L/x", "timeout": -1}) == [
        ("endpoint", "L/x"),
        ("timeout", "-1"),
    ]


def test_every_kind_accepts_plain_values() -> None:
    """The check refuses nothing ordinary: each kind with an empty payload of its type."""
    from ari_proxy.protocol import PAYLOAD_TYPES

    for name, spec in KINDS.items():
        payload = PAYLOAD_TYPES[spec.payload]() if spec.payload else None
        check_request(name, Key(spec.entity, "plain-id_1.2", NODE, "d1", "app"), payload)


# --- the proxy client refuses before sending ----------------------------------------------------


@pytest_asyncio.fixture
async def memory_client() -> AsyncIterator[tuple[ProxyClient, list[BusMessage]]]:
    broker = MemoryBroker()
    spy = broker.transport()
    await spy.connect()
    sent: list[BusMessage] = []
    await spy.subscribe("ari.>", sent.append)
    transport = broker.transport()
    await transport.connect()
    backend = ProxyBackend(transport, "app", timeout=0.5, discovery_wait=0.05)
    await backend.start()
    client = ProxyClient(backend, timeout=0.5)
    sent.clear()  # the discovery ping
    try:
        yield client, sent
    finally:
        await client.close()
        await spy.close()


async def test_the_proxy_client_refuses_before_sending(
    memory_client: tuple[ProxyClient, list[BusMessage]],
) -> None:
    client, sent = memory_client
    with pytest.raises(InvalidRequestError, match=r"key.id 'victimbr\\x00zzz'"):
        await client.bridges.handle("victimbr\x00zzz", node=NODE).destroy()
    with pytest.raises(InvalidRequestError, match="'timeout'"):
        await client.channels.originate("Local/x@default", timeout=1e26, node=NODE)
    with pytest.raises(InvalidRequestError, match=r"key\.dialog"):
        await client.scoped("dl\nx").bridges.handle("b", node=NODE).destroy()
    with pytest.raises(InvalidRequestError, match=r"key\.id"):
        await client.recordings.stored("r\x00").read()
    await asyncio.sleep(0.05)
    assert [m.subject for m in sent] == []


# --- the server refuses without asking Asterisk -------------------------------------------------


@pytest_asyncio.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    # Port 9 (discard): nothing listens, so a request that reached HTTP would fail loudly.
    http = HttpTransport("http://127.0.0.1:9/ari", "u", "p", timeout=2.0)
    executors = {"app": Executor(http, "app", lambda: NODE)}
    yield Dispatcher(
        executors, DialogRouter(), node=lambda: NODE, request_timeout=2.0, file_limit=lambda: 10
    )
    await http.close()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "BridgeDelete", "key": {"kind": "bridge", "id": "victimbr\x00zzz"}}, "key.id"),
        ({"kind": "ChannelSubscribe", "key": {"id": "c\n", "dialog": "d1"}}, "key.id"),
        ({"kind": "ChannelAnswer", "key": {"id": "c", "node": "n\r"}}, "key.node"),
        (
            {
                "kind": "ChannelOriginate",
                "key": {"app": "app"},
                "channel_originate": {
                    "originate_request": {"endpoint": "Local/x@default", "timeout": 10**26}
                },
            },
            "'timeout'",
        ),
        (
            {
                "kind": "BridgeAddChannel",
                "key": {"kind": "bridge", "id": "b"},
                "bridge_add_channel": {"channel": "c\x00"},
            },
            "'channel'",
        ),
    ],
)
async def test_the_server_refuses_naming_the_field(
    dispatcher: Dispatcher, data: dict[str, Any], field: str
) -> None:
    raw = json.dumps(data).encode()
    response = await dispatcher.dispatch("app", RequestClass.COMMAND, raw, "ari.command.app")
    assert response is not None
    assert response.code == "bad_request", response
    assert field in response.error and "connect" not in (response.message or "")
    assert not dispatcher.router.dialog_ids()  # nothing bound either


async def test_a_hostile_kind_or_id_makes_one_log_line(dispatcher: Dispatcher) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("ari_proxy.server")
    log.addHandler(handler)
    try:
        for data in (
            {"kind": 'Evil\nKind\r\n{"level":"info"}', "key": {}},
            {"kind": "BridgeDelete", "key": {"kind": "bridge", "id": 'x\n{"msg":"forged"}'}},
        ):
            raw = json.dumps(data).encode()
            await dispatcher.dispatch("app", RequestClass.COMMAND, raw, "ari.command.app")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    records = [json.loads(line) for line in lines]
    assert records[0]["kind"] == 'Evil\nKind\r\n{"level":"info"}'
    assert "forged" in records[1]["msg"] and records[1]["level"] == "warning"


# --- against the real stack ---------------------------------------------------------------------


async def test_a_nul_or_newline_id_never_reaches_asterisk(
    asterisk: Instance, nats_url: str, server: Server, nc: NatsClient
) -> None:
    app, node = server.applications[0], server.node
    victim = f"victimbr-{app}"
    subject = f"ari.create.{app}.{node}"
    created = await request(
        nc, subject, {"kind": "BridgeCreate", "key": {"kind": "bridge", "id": victim}}
    )
    assert created["error"] == ""
    try:
        for hostile in (f"{victim}\x00zzz", f"{victim}\nzzz", f"{victim}\r\n"):
            reply = await request(
                nc,
                f"ari.command.{app}.{node}",
                {"kind": "BridgeDelete", "key": {"kind": "bridge", "id": hostile}},
            )
            assert reply["code"] == "bad_request" and "key.id" in reply["error"], reply

        # Both clients refuse it before sending.
        async with ari_proxy.connect(nats_url, application=app) as proxied:
            with pytest.raises(InvalidRequestError, match=r"key\.id"):
                await proxied.bridges.handle(f"{victim}\x00zzz", node=node).destroy()
            channel = f"ch-{app}"
            with pytest.raises(InvalidRequestError, match="'timeout'"):
                await proxied.channels.originate(
                    "Local/wait@default", channel_id=channel, timeout=1e26, node=node
                )
        async with ari_proxy.connect(
            asterisk.http_url, application=app, username=asterisk.username,
            password=asterisk.password,
        ) as native:  # fmt: skip
            with pytest.raises(InvalidRequestError, match=r"key\.id"):
                await native.bridges.handle(f"{victim}\x00zzz").destroy()
            # The bridge aimed at survived all of it, and no channel was made.
            assert (await native.bridges.handle(victim).data()).id == victim
            assert channel not in {c.id for c in await native.channels.list()}

        # The raw originate with timeout=10**26 (forwarded before, and the channel made).
        reply = await request(
            nc,
            subject,
            {
                "kind": "ChannelOriginate",
                "key": {"app": app},
                "channel_originate": {
                    "originate_request": {
                        "endpoint": "Local/wait@default",
                        "app": app,
                        "channelId": channel,
                        "timeout": 10**26,
                    }
                },
            },
        )
        assert reply["code"] == "bad_request" and "'timeout'" in reply["error"], reply
        data = await request(
            nc,
            f"ari.data.{app}.{node}",
            {"kind": "ChannelData", "key": {"kind": "channel", "id": channel}},
        )
        assert data["code"] == "not_found", data
    finally:
        await request(
            nc,
            f"ari.command.{app}.{node}",
            {"kind": "BridgeDelete", "key": {"kind": "bridge", "id": victim}},
        )
