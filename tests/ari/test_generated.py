"""Tests of the generated ARI models and operation table, and of the generator itself."""

import inspect
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
import pytest

from ari_proxy.spec._models import (
    EVENT_ENTITIES,
    EVENT_TYPES,
    MODELS,
    AnyMessage,
    Channel,
    ChannelDestroyed,
    ChannelEnteredBridge,
    Event,
    Message,
    MissingParams,
    StasisStart,
    TextMessage,
    TextMessageReceived,
)
from ari_proxy.spec._operation import Operation, build_path, build_query
from ari_proxy.spec._operations import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "generate_ari.py"
API_DOCS = ROOT / "scripts" / "ari-api-docs"
ENTITY_MODELS = {
    "Channel",
    "Bridge",
    "Playback",
    "LiveRecording",
    "Endpoint",
    "DeviceState",
    "TextMessage",
}

STASIS_START = b"""{
  "type": "StasisStart",
  "timestamp": "2024-05-01T10:00:00.123+0000",
  "args": ["inbound", "+4930123456"],
  "channel": {
    "id": "1714557600.42",
    "name": "PJSIP/alice-0000002a",
    "state": "Ring",
    "protocol_id": "5a0e3b2c-7f1d-4e62-9a0b-3c4d5e6f7a8b",
    "caller": {"name": "Alice", "number": "1001"},
    "connected": {"name": "", "number": ""},
    "accountcode": "sales",
    "dialplan": {
      "context": "from-internal",
      "exten": "2000",
      "priority": 3,
      "app_name": "Stasis",
      "app_data": "demo,inbound,+4930123456"
    },
    "creationtime": "2024-05-01T10:00:00.100+0000",
    "language": "en",
    "channelvars": {"CALLERID(num)": "1001", "X_TENANT": "acme"}
  },
  "asterisk_id": "52:54:00:12:34:56",
  "application": "demo"
}"""


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def copy_api_docs(tmp_path: Path) -> Path:
    target = tmp_path / "api-docs"
    shutil.copytree(API_DOCS, target)
    return target


def edit_json(path: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


# --- the generator ------------------------------------------------------------------------------


def test_checked_in_output_is_current() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, result.stderr


def test_check_reports_stale_output(tmp_path: Path) -> None:
    docs = copy_api_docs(tmp_path)
    edit_json(
        docs / "mailboxes.json",
        lambda doc: doc["models"]["Mailbox"].update(description="Changed."),
    )
    result = run_generator("--check", "--api-docs", str(docs))
    assert result.returncode == 1
    assert "_models.py" in result.stderr
    assert "Changed." in result.stderr


def test_identical_duplicate_models_are_merged(tmp_path: Path) -> None:
    docs = copy_api_docs(tmp_path)
    channel = json.loads((docs / "channels.json").read_text(encoding="utf-8"))["models"]["CallerID"]
    edit_json(docs / "bridges.json", lambda doc: doc["models"].update(CallerID=channel))
    result = run_generator("--check", "--api-docs", str(docs))
    assert result.returncode == 0, result.stderr


def test_conflicting_duplicate_models_fail(tmp_path: Path) -> None:
    docs = copy_api_docs(tmp_path)
    channel = json.loads((docs / "channels.json").read_text(encoding="utf-8"))["models"]["CallerID"]
    channel = {**channel, "description": "Something else"}
    edit_json(docs / "bridges.json", lambda doc: doc["models"].update(CallerID=channel))
    result = run_generator("--check", "--api-docs", str(docs))
    assert result.returncode == 2
    assert "'CallerID' is defined differently in channels.json and bridges.json" in result.stderr


def test_unknown_types_fail(tmp_path: Path) -> None:
    docs = copy_api_docs(tmp_path)
    edit_json(
        docs / "mailboxes.json",
        lambda doc: doc["models"]["Mailbox"]["properties"]["name"].update(type="Quaternion"),
    )
    result = run_generator("--check", "--api-docs", str(docs))
    assert result.returncode == 2
    assert "unknown type 'Quaternion'" in result.stderr


# --- operations ---------------------------------------------------------------------------------


def test_operation_counts_and_order() -> None:
    assert len(OPERATIONS) == 109
    assert all(name == op.name == f"{op.resource}.{op.nickname}" for name, op in OPERATIONS.items())
    resources = list(dict.fromkeys(op.resource for op in OPERATIONS.values()))
    assert resources == [
        "asterisk",
        "endpoints",
        "channels",
        "bridges",
        "recordings",
        "sounds",
        "playbacks",
        "deviceStates",
        "mailboxes",
        "events",
        "applications",
    ]
    assert next(iter(OPERATIONS)) == "asterisk.getObject"


def test_only_the_event_websocket_upgrades() -> None:
    websockets = [op for op in OPERATIONS.values() if op.is_websocket]
    assert [(op.name, op.method, op.path) for op in websockets] == [
        ("events.eventWebsocket", "GET", "/events")
    ]
    assert websockets[0].response == "Message"


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=list(OPERATIONS))
def test_path_params_match_template(op: Operation) -> None:
    assert re.findall(r"\{([^{}]+)\}", op.path) == list(op.path_params)
    assert op.path.startswith("/")
    assert not {p.name for p in op.query} & set(op.path_params)
    if op.body is not None:
        assert op.body.location == "body"
        assert op.body.type in ("containers", "object")
    assert all(p.location == "query" for p in op.query)


def test_operation_rows_carry_the_api_docs() -> None:
    originate = OPERATIONS["channels.originate"]
    assert (originate.method, originate.path, originate.response) == (
        "POST",
        "/channels",
        "Channel",
    )
    params = {p.name: p for p in originate.query}
    assert params["endpoint"].required
    assert (params["timeout"].type, params["timeout"].default) == ("int", 30)
    assert params["priority"].type == "long"
    assert originate.body is not None and originate.body.name == "variables"
    assert (400, "Invalid parameters for originating a channel.") in originate.errors
    hangup = {p.name: p for p in OPERATIONS["channels.hangup"].query}
    assert hangup["reason"].allowed is not None and "normal" in hangup["reason"].allowed
    record = {p.name: p for p in OPERATIONS["channels.record"].query}
    assert record["maxDurationSeconds"].minimum == 0
    assert OPERATIONS["recordings.getStoredFile"].response == "binary"
    assert OPERATIONS["bridges.getBridgeVar"].since == ("20.20.0", "22.10.0", "23.4.0")
    # endpoints.json spells this description key "descriptioni"; the generator reads it anyway.
    send = OPERATIONS["endpoints.sendMessage"].body
    assert send is not None and send.description.startswith('The "variables" key')


# --- build_path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("../x", "..%2Fx"),
        ("a/b", "a%2Fb"),
        ("a?b=c", "a%3Fb%3Dc"),
        ("a b", "a%20b"),
        ("%2e%2e", "%252e%252e"),
        ("a#b", "a%23b"),
        ("1714557600.42", "1714557600.42"),
    ],
)
def test_build_path_keeps_hostile_ids_in_one_segment(value: str, encoded: str) -> None:
    op = OPERATIONS["channels.answer"]
    path = build_path(op, {"channelId": value})
    assert path == f"/channels/{encoded}/answer"
    segments = path.split("/")
    assert len(segments) == len(op.path.split("/"))
    assert unquote(segments[2]) == value
    assert "?" not in path and "#" not in path and " " not in path


def test_build_path_fills_several_params_in_template_order() -> None:
    op = OPERATIONS["endpoints.get"]
    assert build_path(op, {"resource": "alice/1", "tech": "PJSIP"}) == "/endpoints/PJSIP/alice%2F1"
    assert build_path(OPERATIONS["channels.list"], {}) == "/channels"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_build_path_rejects_dot_and_empty_segments(value: str) -> None:
    with pytest.raises(ValueError, match="channelId"):
        build_path(OPERATIONS["channels.answer"], {"channelId": value})


def test_build_path_names_the_missing_parameter() -> None:
    with pytest.raises(ValueError, match="missing path parameter 'resource'"):
        build_path(OPERATIONS["endpoints.get"], {"tech": "PJSIP"})


def test_build_path_rejects_unknown_parameters() -> None:
    with pytest.raises(ValueError, match="unknown path parameter"):
        build_path(OPERATIONS["channels.answer"], {"channelId": "1", "bridgeId": "2"})


# --- build_query --------------------------------------------------------------------------------


def test_build_query_serialises_scalars_and_lists_in_api_docs_order() -> None:
    op = OPERATIONS["bridges.addChannel"]
    values = {"mute": False, "absorbDTMF": True, "channel": ["c1", "c2"], "role": None}
    assert build_query(op, values) == [
        ("channel", "c1,c2"),
        ("absorbDTMF", "true"),
        ("mute", "false"),
    ]
    originate = OPERATIONS["channels.originate"]
    assert build_query(originate, {"endpoint": "PJSIP/alice", "timeout": 30, "priority": 1}) == [
        ("endpoint", "PJSIP/alice"),
        ("priority", "1"),
        ("timeout", "30"),
    ]
    websocket = OPERATIONS["events.eventWebsocket"]
    assert build_query(websocket, {"app": ("a", "b"), "subscribeAll": True}) == [
        ("app", "a,b"),
        ("subscribeAll", "true"),
    ]


def test_build_query_passes_strings_through() -> None:
    op = OPERATIONS["channels.play"]
    assert build_query(op, {"media": "sound:a b&c=d", "skipms": "500"}) == [
        ("media", "sound:a b&c=d"),
        ("skipms", "500"),
    ]


@pytest.mark.parametrize("values", [{}, {"channel": None}, {"channel": []}])
def test_build_query_requires_required_parameters(values: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="missing required query parameter 'channel'"):
        build_query(OPERATIONS["bridges.addChannel"], values)


@pytest.mark.parametrize("name", ["chanel", "bridgeId"])
def test_build_query_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match=f"unknown query parameter.*{name}"):
        build_query(OPERATIONS["bridges.addChannel"], {"channel": "c1", name: "x"})


def test_build_query_rejects_the_body_parameter() -> None:
    with pytest.raises(ValueError, match="variables"):
        build_query(OPERATIONS["channels.originate"], {"endpoint": "x", "variables": {}})


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", True), ("timeout", 1.5), ("endpoint", 5), ("formats", ["ulaw", "alaw"])],
)
def test_build_query_rejects_wrong_types(name: str, value: object) -> None:
    values = {"endpoint": "PJSIP/alice", name: value}
    with pytest.raises(TypeError, match=name):
        build_query(OPERATIONS["channels.originate"], values)


# --- models -------------------------------------------------------------------------------------


def test_event_types() -> None:
    assert len(EVENT_TYPES) == 46
    events = {name for name, cls in EVENT_TYPES.items() if issubclass(cls, Event)}
    assert len(events) == 45
    assert set(EVENT_TYPES) - events == {"MissingParams"}
    assert issubclass(MissingParams, Message) and not issubclass(MissingParams, Event)
    for name, cls in EVENT_TYPES.items():
        assert cls.__name__ == name
        assert cls.__struct_config__.tag == name
        assert cls.__struct_config__.tag_field == "type"
    assert set(AnyMessage.__args__) == set(EVENT_TYPES.values())


def test_models_table_and_struct_config() -> None:
    assert len(MODELS) == 85
    assert MODELS["Channel"] is Channel
    for name, cls in MODELS.items():
        config = cls.__struct_config__
        assert cls.__name__ == name
        assert config.omit_defaults
        assert all(p.kind is p.KEYWORD_ONLY for p in inspect.signature(cls).parameters.values())
        assert not config.forbid_unknown_fields
        instance = cls()  # every model decodes and constructs with no field present
        assert msgspec.json.decode(msgspec.json.encode(instance), type=cls) == instance
    assert not MODELS["CallerID"].__struct_config__.gc
    assert not MODELS["ConfigInfo"].__struct_config__.gc  # holds a SetId: scalars only
    assert Channel.__struct_config__.gc  # channelvars is a dict


def test_stasis_start_decodes() -> None:
    event = msgspec.json.Decoder(AnyMessage).decode(STASIS_START)
    assert isinstance(event, StasisStart)
    assert (event.application, event.asterisk_id) == ("demo", "52:54:00:12:34:56")
    assert event.timestamp == "2024-05-01T10:00:00.123+0000"
    assert event.args == ["inbound", "+4930123456"]
    assert event.replace_channel is None
    channel = event.channel
    assert (channel.id, channel.state, channel.language) == ("1714557600.42", "Ring", "en")
    assert channel.creationtime == "2024-05-01T10:00:00.100+0000"
    assert (channel.dialplan.app_name, channel.dialplan.priority) == ("Stasis", 3)
    assert channel.dialplan.app_data == "demo,inbound,+4930123456"
    assert (channel.caller.name, channel.caller.number) == ("Alice", "1001")
    assert channel.connected.number == ""
    assert channel.accountcode == "sales"
    assert channel.channelvars == {"CALLERID(num)": "1001", "X_TENANT": "acme"}
    assert json.loads(msgspec.json.encode(event))["type"] == "StasisStart"


def test_unknown_fields_are_ignored() -> None:
    doc = json.loads(STASIS_START)
    doc["added_in_asterisk_99"] = {"x": 1}
    doc["channel"]["dialplan"]["new_field"] = [1, 2]
    event = msgspec.json.Decoder(AnyMessage).decode(json.dumps(doc))
    assert isinstance(event, StasisStart)
    assert event.channel.dialplan.exten == "2000"


def test_missing_required_fields_get_zero_defaults() -> None:
    doc = json.loads(STASIS_START)
    del doc["args"], doc["channel"]["language"], doc["channel"]["dialplan"], doc["timestamp"]
    event = msgspec.json.Decoder(AnyMessage).decode(json.dumps(doc))
    assert isinstance(event, StasisStart)
    assert (event.args, event.timestamp, event.channel.language) == ([], "", "")
    assert event.channel.dialplan.context == ""
    bare = msgspec.json.Decoder(AnyMessage).decode(b'{"type": "ChannelDestroyed"}')
    assert isinstance(bare, ChannelDestroyed)
    assert (bare.cause, bare.cause_txt, bare.channel.id, bare.tech_cause) == (0, "", "", None)


@pytest.mark.parametrize("raw", [b'{"type": "ChannelTeleported"}', b'{"application": "x"}'])
def test_unknown_or_missing_type_raises(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.Decoder(AnyMessage).decode(raw)


def test_raw_bytes_can_be_attached_to_messages() -> None:
    decoder = msgspec.json.Decoder(AnyMessage)
    for raw in (STASIS_START, b'{"type": "MissingParams", "params": ["app"]}'):
        message = decoder.decode(raw)
        message._raw = raw
        assert message._raw is raw
        assert b"_raw" not in msgspec.json.encode(message)
    assert Message.__struct_config__.tag_field == "type"
    for cls in EVENT_TYPES.values():  # dict=True is inherited by every message type
        assert cls.__struct_config__.dict and hasattr(cls(), "__dict__")


def test_keyword_property_is_renamed() -> None:
    raw = b"""{"type": "TextMessageReceived", "application": "demo",
        "timestamp": "2024-05-01T10:00:00.123+0000",
        "message": {"from": "pjsip:alice@example.com", "to": "pjsip:bob", "body": "hi"}}"""
    event = msgspec.json.Decoder(AnyMessage).decode(raw)
    assert isinstance(event, TextMessageReceived)
    assert event.message.from_ == "pjsip:alice@example.com"
    assert b'"from":"x"' in msgspec.json.encode(TextMessage(from_="x"))


def test_event_entities() -> None:
    assert set(EVENT_ENTITIES) == set(EVENT_TYPES)
    entered = EVENT_ENTITIES["ChannelEnteredBridge"]
    assert ("channel", "Channel") in entered and ("bridge", "Bridge") in entered
    dial = dict(EVENT_ENTITIES["Dial"])
    assert dial == {"caller": "Channel", "peer": "Channel", "forwarded": "Channel"}
    assert EVENT_ENTITIES["DeviceStateChanged"] == (("device_state", "DeviceState"),)
    assert EVENT_ENTITIES["ApplicationReplaced"] == ()
    for name, refs in EVENT_ENTITIES.items():
        for attr, model in refs:
            assert model in ENTITY_MODELS
            assert attr in EVENT_TYPES[name].__struct_fields__
    event = ChannelEnteredBridge(channel=Channel(id="c1"))
    assert [getattr(event, attr) for attr, _ in entered] == [event.bridge, event.channel]
