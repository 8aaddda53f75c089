"""The JSON Schemas in schemas/ are current and describe the wire: every recorded Go message and
every message our code encodes validates, and malformed messages do not."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import msgspec
import pytest
from protocol_vectors import Vector, vectors_with_role
from test_protocol_vectors import EMPTY_OBJECT_BODY, NON_JSON_BODY

from ari_proxy.events import ConnectionGap
from ari_proxy.protocol import (
    KINDS,
    PAYLOAD_TYPES,
    Announcement,
    ChannelExternalMedia,
    ChannelRecord,
    ChannelSendDTMF,
    ChannelUserEvent,
    DTMFOptions,
    EntityData,
    ErrorCode,
    ExternalMediaOptions,
    Key,
    RecordingOptions,
    Request,
    Response,
    UserEventBody,
    empty_variable_data,
    encode,
    encode_announcement,
    encode_request,
    encode_response,
    entity_with_key,
    format_go_datetime,
    stamp_event,
    variable_data,
    with_dialog,
)
from ari_proxy.spec._models import AnyMessage

ROOT = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_schemas", ROOT / "scripts" / "gen_schemas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
NAMES = list(GEN.GENERATORS)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    # The checked-in files, which are what other languages use.
    schema = json.loads((ROOT / GEN.schema_path(name)).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def errors(name: str, instance: Any) -> list[str]:
    """Why `instance` is not valid under the schema `name` (empty when it is)."""
    return [f"{e.json_path}: {e.message}" for e in _validator(name).iter_errors(instance)]


def _vectors(*roles: str, leave_out: frozenset[tuple[str, int]] = frozenset()) -> list[Any]:
    return [
        pytest.param(v, id=v.id)
        for v in vectors_with_role(*roles)
        if (v.bus, v.seq) not in leave_out
    ]


# --- the files --------------------------------------------------------------------------------


def test_checked_in_schemas_are_current() -> None:
    assert GEN.check() == [], "run scripts/gen_schemas.py"


def test_check_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "schemas.md", tmp_path / "docs")
    assert GEN.check(tmp_path) == []
    request = tmp_path / "schemas" / "request.schema.json"
    request.write_text(request.read_text(encoding="utf-8").replace('"kind"', '"Kind"'))
    (tmp_path / "schemas" / "key.schema.json").unlink()
    (tmp_path / "schemas" / "old.schema.json").write_text("{}")
    assert GEN.check(tmp_path) == [
        "schemas/request.schema.json is out of date",
        "schemas/key.schema.json is missing",
        "schemas/old.schema.json is not generated any more",
    ]
    assert GEN.main(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_a_2020_12_schema_with_its_identity(name: str) -> None:
    schema = _validator(name).schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:ari-proxy:v5:{name}"
    assert schema["title"] and schema["description"]


def test_the_example_of_the_docs_validates() -> None:
    assert errors("request", GEN.EXAMPLE_REQUEST) == []
    example = json.dumps(GEN.EXAMPLE_REQUEST, separators=(",", ":"))
    assert example in (ROOT / "docs" / "schemas.md").read_text(encoding="utf-8")


# --- recorded Go traffic ----------------------------------------------------------------------

# NON_JSON_BODY is deliberately not JSON, so no JSON Schema applies to it (a Go server drops it,
# ours answers `bad_request`). EMPTY_OBJECT_BODY, the hand-made `{}`, is tested on its own below.


@pytest.mark.parametrize(
    "vector", _vectors("request", "ping", leave_out=frozenset(NON_JSON_BODY | EMPTY_OBJECT_BODY))
)
def test_recorded_request_validates(vector: Vector) -> None:
    assert errors("request", vector.body) == []


def test_recorded_empty_object_request_is_rejected() -> None:
    # No peer writes `{}`: Go and we always write `kind` and `key`, which the schema requires.
    # A server reads it as kind "" and answers `Not implemented`.
    bodies = [v.body for v in vectors_with_role("request") if (v.bus, v.seq) in EMPTY_OBJECT_BODY]
    assert bodies == [{}]
    assert errors("request", {}) == [
        "$: 'kind' is a required property",
        "$: 'key' is a required property",
    ]


@pytest.mark.parametrize("vector", _vectors("reply"))
def test_recorded_reply_validates(vector: Vector) -> None:
    assert errors("response", vector.body) == []


@pytest.mark.parametrize("vector", _vectors("announce"))
def test_recorded_announcement_validates(vector: Vector) -> None:
    assert errors("announcement", vector.body) == []


@pytest.mark.parametrize("vector", _vectors("event", "dialogevent"))
def test_recorded_event_validates(vector: Vector) -> None:
    assert errors("event", vector.body) == []
    assert ("dialog" in vector.body) == (vector.role == "dialogevent")


def _recorded_keys() -> list[Any]:
    keys = []
    for vector in vectors_with_role("request", "reply"):
        if not isinstance(vector.body, dict):
            continue
        body = vector.body
        keys += [body.get("key"), *body.get("keys", ())]
        keys += [
            entity.get("key")
            for entity in (body.get("data") or {}).values()
            if isinstance(entity, dict)
        ]
    return [key for key in keys if key is not None]


def test_recorded_keys_validate() -> None:
    keys = _recorded_keys()
    assert len(keys) > 1000  # SoundList alone has 568
    assert [(key, errors("key", key)) for key in keys if errors("key", key)] == []


def test_go_events_need_the_null_allowance() -> None:
    # The allowance is not slack: msgspec's strict schema of our models refuses Go's events.
    strict = jsonschema.Draft202012Validator(msgspec.json.schema(AnyMessage | ConnectionGap))
    refused = [v.id for v in vectors_with_role("event") if not strict.is_valid(v.body)]
    assert refused


# --- what our code encodes --------------------------------------------------------------------

KEY = Key("channel", "1714557600.42", "52:54:00:12:34:56", "", "demo")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_our_request_of_each_kind_validates(kind: str) -> None:
    spec = KINDS[kind]
    payload = {spec.payload: PAYLOAD_TYPES[spec.payload]()} if spec.payload else {}
    key = Key(spec.entity, "some-id", "some-node", "some-dialog", "some-app")
    request = Request(kind=kind, key=key, **payload)
    assert errors("request", json.loads(encode_request(request))) == []


@pytest.mark.parametrize(
    "request_",
    [
        Request(),  # what a client pings with
        Request(kind="ChannelAnswer", key=Key()),
        Request(
            kind="ChannelRecord",
            key=KEY,
            channel_record=ChannelRecord(
                "rec", RecordingOptions("wav", 30_000_000_000, 0, "overwrite", True, "#")
            ),
        ),
        Request(
            kind="ChannelSendDTMF",
            key=KEY,
            channel_send_dtmf=ChannelSendDTMF("123#", DTMFOptions(between=100_000_000)),
        ),
        Request(
            kind="ChannelExternalMedia",
            key=KEY,
            channel_external_media=ChannelExternalMedia(
                ExternalMediaOptions(external_host="10.0.0.1:4000", format="ulaw", variables={})
            ),
        ),
        Request(
            kind="ChannelUserEvent",
            key=KEY,
            channel_user_event=ChannelUserEvent(
                UserEventBody(
                    channel=msgspec.Raw(b'{"id":"c"}'), eventname="x", userevent={"a": "1"}
                )
            ),
        ),
    ],
    ids=["ping", "empty-key", "record-options", "dtmf-options", "external-media", "user-event"],
)
def test_our_request_with_options_validates(request_: Request) -> None:
    assert errors("request", json.loads(encode_request(request_))) == []


@pytest.mark.parametrize(
    "response",
    [
        Response(),
        Response(key=KEY),
        Response(keys=(KEY, KEY.new("channel", "other"), Key("sound", "hello-world"))),
        Response(
            error="Non-2XX response: 404 Not Found",
            status=404,
            code=ErrorCode.NOT_FOUND,
            message="Channel not found",
        ),
        Response(error="Not implemented", code=ErrorCode.NOT_IMPLEMENTED),
        Response(data=EntityData(channel=entity_with_key(b'{"id":"c","state":"Up"}', KEY))),
        Response(data=EntityData(asterisk=msgspec.Raw(b'{"system":{"version":"22"}}'))),
        Response(data=variable_data("value")),
        Response(data=empty_variable_data()),
        Response(data=EntityData(file=msgspec.Raw(b'"aGVsbG8="'))),
    ],
    ids=[
        "ok",
        "ok-key",
        "ok-keys",
        "error-status-code-message",
        "not-implemented",
        "data-channel",
        "data-asterisk",
        "data-variable",
        "data-unset-variable",
        "data-file",
    ],
)
def test_our_response_validates(response: Response) -> None:
    assert errors("response", json.loads(encode_response(response))) == []


@pytest.mark.parametrize(
    "announcement",
    [Announcement("52:54:00:12:34:56", "demo"), Announcement("n", "demo", ("listen",))],
    ids=["go-shape", "features"],
)
def test_our_announcement_validates(announcement: Announcement) -> None:
    assert errors("announcement", json.loads(encode_announcement(announcement))) == []


ASTERISK_EVENT = (
    b'{"type":"StasisStart","timestamp":"2024-05-01T10:00:00.123+0000","args":[],'
    b'"channel":{"id":"c","name":"PJSIP/a-1","state":"Ring","caller":{"name":"","number":"1"},'
    b'"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"x",'
    b'"exten":"s","priority":1,"app_name":"Stasis","app_data":"demo"},'
    b'"creationtime":"2024-05-01T10:00:00.100+0000","language":"en"}}'
)


def test_our_published_events_validate() -> None:
    stamped = stamp_event(ASTERISK_EVENT, "demo", "52:54:00:12:34:56")
    gap = ConnectionGap(
        application="demo",
        asterisk_id="52:54:00:12:34:56",
        timestamp=format_go_datetime(datetime(2024, 5, 1, 10, tzinfo=UTC)),
        source="ari",
        started=1.0,
        ended=2.5,
    )
    for event in (stamped, with_dialog(stamped, "d1"), encode(gap), with_dialog(encode(gap), "d")):
        assert errors("event", json.loads(event)) == [], event


# --- malformed messages -----------------------------------------------------------------------

_TIME = "2026-11-26T06:10:43.892+0000"
_ENVELOPE = {"application": "demo", "asterisk_id": "n", "timestamp": _TIME}


def _bad(name: str, what: str, instance: Any, reason: str) -> Any:
    return pytest.param(name, instance, reason, id=f"{name}-{what}")


@pytest.mark.parametrize(
    ("name", "instance", "reason"),
    [
        _bad("request", "kind-not-string", {"kind": 1, "key": None}, "$.kind: 1 is not of type"),
        _bad("request", "no-key", {"kind": "ChannelAnswer"}, "$: 'key' is a required property"),
        _bad("request", "key-string", {"kind": "ChannelAnswer", "key": "c/x"}, "$.key: 'c/x'"),
        _bad("request", "not-object", [], "$: [] is not of type 'object'"),
        _bad(
            "request",
            "payload-incomplete",
            {"kind": "ChannelDial", "key": None, "channel_dial": {"caller": "c"}},
            "$.channel_dial: {'caller': 'c'} is not valid",
        ),
        _bad("response", "no-error", {"data": {}}, "$: 'error' is a required property"),
        _bad("response", "status-string", {"error": "", "status": "404"}, "$.status: '404'"),
        _bad("response", "file-number", {"error": "", "data": {"file": 5}}, "$.data: {'file'"),
        _bad("response", "key-id-number", {"error": "", "keys": [{"id": 1}]}, "$.keys[0].id: 1"),
        _bad("key", "id-number", {"id": 5}, "$.id: 5 is not of type 'string'"),
        _bad("key", "string", "channel/x", "$: 'channel/x' is not of type 'object'"),
        _bad("announcement", "no-node", {"application": "demo"}, "$: 'node' is a required"),
        _bad(
            "announcement",
            "features-string",
            {"node": "n", "application": "demo", "features": "listen"},
            "$.features: 'listen' is not of type 'array'",
        ),
        _bad("event", "no-type", _ENVELOPE, "$: 'type' is a required property"),
        _bad("event", "no-node", {"type": "Dial", "application": "d"}, "$: 'asterisk_id' is"),
        _bad("event", "type-number", {**_ENVELOPE, "type": 5}, "$.type: 5 is not of type"),
        _bad(
            "event",
            "timestamp-rfc3339",
            {**_ENVELOPE, "type": "Dial", "timestamp": "2026-11-26T06:10:43Z"},
            "$.timestamp: '2026-11-26T06:10:43Z' does not match",
        ),
        _bad("event", "dial-peer-string", {**_ENVELOPE, "type": "Dial", "peer": "c"}, "$.peer"),
        _bad("event", "args-string", {**_ENVELOPE, "type": "StasisStart", "args": "a"}, "$.args"),
    ],
)
def test_malformed_message_is_rejected(name: str, instance: Any, reason: str) -> None:
    found = errors(name, instance)
    assert any(problem.startswith(reason) for problem in found), found
