"""The reply codec: a kind's `Result` to the wire `Response` and back, errors both ways.

What the server encodes, the client decodes into the same `Result`; what the server answers for
an exception, the client raises as the same exception. Go's reshaped structs (`config`, `log`)
and the binary `file` are checked in their wire shape too, since Go peers read them.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import ari_proxy
from ari_proxy.protocol import (
    ARI_DOWN_TEXT,
    KINDS,
    Key,
    Reply,
    Response,
    Result,
    decode_response,
    decode_result,
    encode_response,
    encode_result,
    error_reply,
    reply_error,
)

NODE = "02:aa:bb:cc:dd:ee"
KEY = Key("channel", "c1", NODE, "", "app")


def wire(response: Response) -> Any:
    """The reply as a peer reads it: encoded, then parsed as plain JSON."""
    return json.loads(encode_response(response))


def round_trip(kind: str, result: Result) -> Result:
    spec = KINDS[kind]
    return decode_result(spec, decode_response(encode_response(encode_result(spec, result))))


# --- results ---------------------------------------------------------------------------------


def test_entity_data_gets_the_key_first_and_comes_back_as_asterisk_wrote_it() -> None:
    body = b'{"id":"c1","name":"PJSIP/1"}'
    response = encode_result(KINDS["ChannelData"], Result(key=KEY, data=body))
    raw = encode_response(response)
    assert raw.startswith(b'{"error":"","data":{"channel":{"key":{"kind":"channel","id":"c1"')
    back = round_trip("ChannelData", Result(key=KEY, data=body))
    assert json.loads(back.data or b"") == {
        "key": json.loads(msgspec.json.encode(KEY)),
        **json.loads(body),
    }


def test_asterisk_info_travels_without_a_key() -> None:
    body = b'{"system":{"entity_id":"x"}}'
    response = encode_result(KINDS["AsteriskInfo"], Result(key=KEY, data=body))
    assert wire(response)["data"] == {"asterisk": {"system": {"entity_id": "x"}}}
    assert round_trip("AsteriskInfo", Result(key=KEY, data=body)).data == body


def test_config_travels_as_go_config_data_and_comes_back_as_tuples() -> None:
    key = Key("config", "res_pjsip/endpoint/alice", NODE, "", "app")
    tuples = b'[{"attribute":"context","value":"default"},{"attribute":"allow","value":"ulaw"}]'
    data = wire(encode_result(KINDS["AsteriskConfigData"], Result(key=key, data=tuples)))["data"]
    config = data["config"]
    assert list(config) == ["key", "Class", "Type", "Name", "Fields"]
    assert (config["Class"], config["Type"], config["Name"]) == ("res_pjsip", "endpoint", "alice")
    assert config["Fields"][1] == {"attribute": "allow", "value": "ulaw"}
    assert config["key"]["id"] == "res_pjsip/endpoint/alice"
    back = round_trip("AsteriskConfigData", Result(key=key, data=tuples))
    assert json.loads(back.data or b"") == json.loads(tuples)


def test_log_carries_go_names_and_asterisk_names() -> None:
    key = Key("logging", "console", NODE, "", "app")
    body = b'{"channel":"console","type":"Console","status":"Enabled","configuration":"ERROR"}'
    log = wire(encode_result(KINDS["AsteriskLoggingData"], Result(key=key, data=body)))["data"]
    log = log["log"]
    assert list(log)[:5] == ["key", "channel", "levels", "types", "status"]
    # Go leaves `levels`/`types` empty (docs/protocol.md, "Go defects fixed", 19).
    assert (log["levels"], log["types"]) == ("ERROR", "Console")
    assert (log["configuration"], log["type"]) == ("ERROR", "Console")
    back = json.loads(round_trip("AsteriskLoggingData", Result(key=key, data=body)).data or b"")
    assert (back["configuration"], back["type"], back["status"]) == ("ERROR", "Console", "Enabled")


def test_a_go_servers_log_reads_as_asterisks() -> None:
    # A Go server sends only Go's names.
    go = Response(
        data=decode_response(b'{"error":"","data":{"log":{"levels":"NOTICE","types":"File"}}}').data
    )
    back = json.loads(decode_result(KINDS["AsteriskLoggingData"], go).data or b"")
    assert (back["configuration"], back["type"]) == ("NOTICE", "File")


def test_a_file_travels_as_base64() -> None:
    content = b"RIFF" + bytes(range(256))
    response = encode_result(KINDS["RecordingStoredFile"], Result(data=content))
    assert isinstance(wire(response)["data"]["file"], str)
    assert round_trip("RecordingStoredFile", Result(data=content)).data == content


@pytest.mark.parametrize("value", ["", "yes", "ünïcode"])
def test_variables_round_trip(value: str) -> None:
    assert round_trip("ChannelVariableGet", Result(variable=value)).variable == value


def test_unset_variable_is_an_empty_object() -> None:
    response = encode_result(KINDS["AsteriskVariableGet"], Result(variable=""))
    assert encode_response(response) == b'{"error":"","data":{}}'


def test_keys_round_trip() -> None:
    keys = [Key("channel", f"c{i}", NODE, "", "app") for i in range(3)]
    assert list(round_trip("ChannelList", Result(keys=keys)).keys) == keys


def test_a_key_reply_without_a_key_is_not_found() -> None:
    # Go answers {"error":""} with no key (docs/protocol.md, "Go defects fixed", 14).
    spec = next(s for s in KINDS.values() if s.reply is Reply.KEY_REQUEST)
    response = encode_result(spec, Result())
    assert (response.error, response.code, response.status) == ("not found", "not_found", 404)
    assert isinstance(reply_error(response), ari_proxy.NotFoundError)


def test_every_kind_round_trips_its_reply_shape() -> None:
    for spec in KINDS.values():
        key = Key(spec.entity or "channel", "x1", NODE, "", "app")
        result = Result(
            key=key, keys=[key], data=b"[]" if spec.data == "config" else b"{}", variable="v"
        )
        if spec.data == "file":
            result.data = b"bytes"
        back = decode_result(spec, decode_response(encode_response(encode_result(spec, result))))
        if spec.reply is Reply.KEYS:
            assert list(back.keys) == [key], spec.name
        elif spec.reply is Reply.VARIABLE:
            assert back.variable == "v", spec.name
        elif spec.reply in (Reply.KEY_REQUEST, Reply.KEY_RESULT):
            assert back.key == key, spec.name


# --- errors ----------------------------------------------------------------------------------

ERRORS = [
    ari_proxy.NotFoundError(
        "Non-2XX response: 404 Not Found",
        status=404,
        reason="Not Found",
        message="Channel not found",
    ),
    ari_proxy.ConflictError(
        "Non-2XX response: 409 Conflict",
        status=409,
        reason="Conflict",
        message="Channel not in Stasis application",
    ),
    ari_proxy.BadRequestError(
        "Non-2XX response: 400 Bad Request",
        status=400,
        reason="Bad Request",
        message="Channel not found",
    ),
    ari_proxy.InternalServerError("Non-2XX response: 500 Internal Server Error", status=500),
    ari_proxy.InvalidRequestError("OriginateRequest is mandatory"),
    ari_proxy.UnknownKindError("Not implemented"),
    ari_proxy.RequestTimeout("ChannelData: Asterisk did not answer within 2s"),
    ari_proxy.TooLargeError("the file is larger than 10 bytes"),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_round_trip(exc: ari_proxy.AriProxyError) -> None:
    response = decode_response(encode_response(error_reply(exc)))
    back = reply_error(response)
    assert type(back) is type(exc)
    assert str(back) == str(exc)  # Go clients read this text
    if isinstance(exc, ari_proxy.AriError):
        assert isinstance(back, ari_proxy.AriError)
        assert (back.status, back.message) == (exc.status, exc.message)


def test_a_lost_asterisk_is_gos_ari_down() -> None:
    response = error_reply(ari_proxy.ConnectionDownError("cannot connect to Asterisk: refused"))
    assert (response.error, response.code) == (ARI_DOWN_TEXT, "ari_down")
    assert response.message == "cannot connect to Asterisk: refused"
    assert isinstance(reply_error(response), ari_proxy.ConnectionDownError)


def test_invalid_requests_carry_no_status_on_the_wire() -> None:
    # Asterisk was not asked, so there is no HTTP status to report.
    assert "status" not in wire(error_reply(ari_proxy.InvalidRequestError("wrong key type")))


@pytest.mark.parametrize(
    ("text", "error", "status"),
    [
        ("Non-2XX response: 404 Not Found", ari_proxy.NotFoundError, 404),
        (
            "failed to get data: Error getting data for channel 'x': "
            "Non-2XX response: 404 Not Found",
            ari_proxy.NotFoundError,
            404,
        ),
        ("Non-2XX response: 404 Variable Not Found", ari_proxy.NotFoundError, 404),
        ("Non-2XX response: 409 Conflict", ari_proxy.ConflictError, 409),
        ("not found", ari_proxy.NotFoundError, 404),
        ("OriginateRequest is mandatory", ari_proxy.InvalidRequestError, 400),
        ("Not implemented", ari_proxy.UnknownKindError, None),
        ("ARI connection is down", ari_proxy.ConnectionDownError, None),
    ],
)
def test_go_error_texts(text: str, error: type[Exception], status: int | None) -> None:
    # A Go server's reply carries the text alone.
    back = reply_error(Response(error=text))
    assert type(back) is error
    if status is not None:
        assert isinstance(back, ari_proxy.AriError) and back.status == status
