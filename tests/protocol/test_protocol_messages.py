"""Requests, replies, announcements and the event helpers (docs/protocol.md: "Envelopes",
"Events", "Announcements")."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_proxy.protocol import (
    Announcement,
    ApplicationEventFilter,
    AsteriskInfoQuery,
    AsteriskLoggingChannel,
    BridgeAddChannel,
    BridgeMOH,
    ChannelCreate,
    ChannelExternalMedia,
    ChannelHangup,
    ChannelMOH,
    ChannelMove,
    ChannelMute,
    ChannelOriginate,
    ChannelPlay,
    ChannelSendDTMF,
    ChannelUserEvent,
    ChannelVariable,
    DTMFOptions,
    EndpointRefer,
    EndpointSendMessage,
    EntityData,
    ErrorCode,
    Key,
    OriginateRequest,
    ProtocolError,
    RecordingOptions,
    Request,
    Response,
    SoundList,
    Variables,
    decode_announcement,
    decode_request,
    decode_response,
    empty_variable_data,
    encode,
    encode_announcement,
    encode_request,
    encode_response,
    entity_with_key,
    stamp_event,
    variable_data,
    with_dialog,
)

# --- requests --------------------------------------------------------------------------------


def test_kind_and_key_are_always_sent() -> None:
    assert encode_request(Request(kind="X", key=None)) == b'{"kind":"X","key":null}'
    assert encode_request(Request()) == b'{"kind":"","key":null}'
    assert encode_request(Request(kind="X", key=Key())) == b'{"kind":"X","key":{}}'


def test_request_payload_fields_are_in_go_order() -> None:
    assert Request.__struct_encode_fields__[:33] == (
        "kind", "key", "application_subscribe", "asterisk_config", "asterisk_logging_channel",
        "asterisk_variable_set", "bridge_add_channel", "bridge_create", "bridge_moh",
        "bridge_play", "bridge_record", "bridge_remove_channel", "bridge_video_source",
        "channel_create", "channel_continue", "channel_dial", "channel_hangup", "channel_moh",
        "channel_mute", "channel_originate", "channel_play", "channel_record",
        "channel_send_dtmf", "channel_snoop", "channel_external_media", "channel_variable",
        "channel_user_event", "device_state_update", "endpoint_list_by_tech", "mailbox_update",
        "playback_control", "recording_stored_copy", "sound_list",
    )  # fmt: skip
    # Our own kinds' payloads come after Go's fields.
    assert Request.__struct_encode_fields__[33:] == (
        "application_event_filter", "asterisk_info", "bridge_variable", "variables",
        "channel_move", "channel_redirect", "channel_transfer_progress",
        "endpoint_send_message", "endpoint_refer", "user_event", "channel_claim",
        "listen_take", "listen_state", "deadline",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (ChannelCreate(), b'{"channel_create_request":{"endpoint":"","app":""}}'),
        (ChannelOriginate(), b'{"originate_request":{"endpoint":""}}'),
        (
            ChannelExternalMedia(),
            b'{"options":{"channelId":"","app":"","external_host":"","encapsulation":"",'
            b'"transport":"","connection_type":"","format":"","direction":"","variables":null}}',
        ),
        (
            ChannelUserEvent(),
            b'{"UserEvent":{"application":"","timestamp":"0001-01-01T00:00:00.000+0000",'
            b'"type":"","eventname":"","userevent":null}}',
        ),
        (SoundList(), b'{"filters":null}'),
        (SoundList({"lang": "en", "format": "gsm"}), b'{"filters":{"format":"gsm","lang":"en"}}'),
        (ChannelMOH(), b'{"music":""}'),
        (ChannelMute(), b"{}"),
        (ChannelVariable(name="X"), b'{"name":"X"}'),
        (ChannelHangup(), b'{"reason":""}'),
        (AsteriskLoggingChannel("notice,warning"), b'{"config":"notice,warning"}'),
        (BridgeMOH("default"), b'{"class":"default"}'),
        (
            BridgeAddChannel("c", absorb_dtmf=True, mute=True, role="r"),
            b'{"channel":"c","absorbDTMF":true,"mute":true,"role":"r"}',
        ),
        (
            ChannelSendDTMF("1", DTMFOptions(between=200_000_000)),
            b'{"dtmf":"1","options":{"Before":0,"Between":200000000,"Duration":0,"After":0}}',
        ),
        (EndpointSendMessage("pjsip:a", "b"), b'{"to":"pjsip:a","from":"b"}'),
        (
            EndpointRefer("t", "f", "r", to_self=True, variables={"X": "1"}),
            b'{"to":"t","from":"f","refer_to":"r","to_self":true,"variables":{"X":"1"}}',
        ),
        (Variables(names=("A", "B")), b'{"names":["A","B"]}'),
        (Variables(values={"B": "2", "A": "1"}), b'{"values":{"A":"1","B":"2"}}'),
        (ChannelMove("other"), b'{"app":"other"}'),
        (AsteriskInfoQuery(), b"{}"),
        (
            ApplicationEventFilter(allowed=({"type": "StasisStart"},)),
            b'{"allowed":[{"type":"StasisStart"}]}',
        ),
        (
            RecordingOptions(format="wav", max_duration=10**9, exists="overwrite"),
            b'{"Format":"wav","MaxDuration":1000000000,"MaxSilence":0,"Exists":"overwrite",'
            b'"Beep":false,"Terminate":""}',
        ),
    ],
)
def test_payload_shapes(payload: msgspec.Struct, expected: bytes) -> None:
    assert encode(payload) == expected
    assert msgspec.json.decode(expected, type=type(payload)) == payload


def test_originate_request_order_and_omitempty() -> None:
    request = OriginateRequest(
        endpoint="PJSIP/100",
        timeout=30,
        caller_id="c",
        context="x",
        extension="s",
        priority=1,
        label="l",
        app="a",
        app_args="b",
        formats="ulaw",
        channel_id="ch",
        other_channel_id="o",
        originator="p",
        variables={"B": "2", "A": "1"},
    )
    assert encode(request) == (
        b'{"endpoint":"PJSIP/100","timeout":30,"callerId":"c","context":"x","extension":"s",'
        b'"priority":1,"label":"l","app":"a","appArgs":"b","formats":"ulaw","channelId":"ch",'
        b'"otherChannelId":"o","originator":"p","variables":{"A":"1","B":"2"}}'
    )


def test_extensions_are_omitted_until_set() -> None:
    assert encode(ChannelPlay("p", "sound:x")) == b'{"playback_id":"p","media_uri":"sound:x"}'
    assert encode(ChannelPlay("p", "sound:x", lang="fr", offsetms=5, skipms=100)) == (
        b'{"playback_id":"p","media_uri":"sound:x","lang":"fr","offsetms":5,"skipms":100}'
    )
    assert encode(ChannelHangup("busy", reason_code="17")) == (
        b'{"reason":"busy","reason_code":"17"}'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind":1}', "$.kind"),
        (b'{"kind":"X","key":"k"}', "$.key"),
        (b'{"kind":"X","key":{"id":5}}', "$.key.id"),
        (b'{"kind":"X","channel_play":[]}', "$.channel_play"),
        (b'{"kind":"X","channel_dial":{"timeout":1e9}}', "$.channel_dial.timeout"),
        (b"[]", "Expected `object`"),
        (b'"x"', "Expected `object`"),
        (b"", "not JSON"),
        (b"\xff", "not JSON"),
    ],
)
def test_bad_requests_raise_protocol_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match="invalid request") as info:
        decode_request(body)
    assert message in str(info.value)


def test_unknown_request_fields_are_ignored() -> None:
    request = decode_request(b'{"kind":"Later","key":null,"channel_later":{"app":"x"}}')
    assert request == Request(kind="Later")


# --- responses -------------------------------------------------------------------------------


def test_error_is_always_sent() -> None:
    assert encode_response(Response()) == b'{"error":""}'
    assert Response().ok
    assert not Response(error="Not implemented").ok


def test_keys_absent_or_empty_decode_as_empty_tuple() -> None:
    assert decode_response(b'{"error":""}').keys == ()
    empty = decode_response(b'{"error":"","keys":[]}')
    assert empty.keys == ()
    assert encode_response(empty) == b'{"error":""}'
    listed = Response(keys=(Key("channel", "a"), Key("channel", "b")))
    assert encode_response(listed) == (
        b'{"error":"","keys":[{"kind":"channel","id":"a"},{"kind":"channel","id":"b"}]}'
    )


def test_status_and_code_extensions() -> None:
    reply = Response(error="Non-2XX response: 404 Not Found", status=404, code=ErrorCode.NOT_FOUND)
    encoded = encode_response(reply)
    assert encoded == (
        b'{"error":"Non-2XX response: 404 Not Found","status":404,"code":"not_found"}'
    )
    assert decode_response(encoded) == reply
    assert decode_response(b'{"error":"x","code":"custom"}').code == "custom"


def test_entity_data_keeps_raw_json() -> None:
    body = b'{"error":"","data":{"channel":{"key":null,"id":"c" , "x":[1, 2]}}}'
    reply = decode_response(body)
    assert reply.data is not None
    assert bytes(reply.data.channel) == b'{"key":null,"id":"c" , "x":[1, 2]}'
    assert not reply.data.bridge
    assert reply.data.which() == "channel"
    assert encode_response(reply) == body


def test_entity_data_extensions_follow_go_fields() -> None:
    fields = EntityData.__struct_encode_fields__
    assert fields[:16] == (
        "application", "asterisk", "bridge", "channel", "config", "device_state", "endpoint",
        "live_recording", "log", "mailbox", "module", "playback", "sound", "stored_recording",
        "text_message", "variable",
    )  # fmt: skip
    assert fields[16:] == ("asterisk_ping", "rtp_statistics", "variables", "file")
    data = EntityData(rtp_statistics=msgspec.Raw(b'{"txcount":1}'))
    assert encode(data) == b'{"rtp_statistics":{"txcount":1}}'
    assert data.which() == "rtp_statistics"


def test_entity_data_ignores_an_empty_raw() -> None:
    data = EntityData(bridge=msgspec.Raw(b""), variable="v")
    assert encode(data) == b'{"variable":"v"}'
    assert data.which() == "variable"
    assert EntityData().which() is None


def test_variable_data_matches_go() -> None:
    # An unset global variable is `"data":{}` in the vectors (nats seq 18), as documented.
    assert encode_response(Response(data=empty_variable_data())) == b'{"error":"","data":{}}'
    assert encode(variable_data("")) == b"{}"
    assert encode(variable_data("golden-42")) == b'{"variable":"golden-42"}'
    assert decode_response(b'{"error":"","data":{}}').data == EntityData()


def test_entity_with_key() -> None:
    key = Key("channel", "c", "n", "", "a")
    key_json = b'{"kind":"channel","id":"c","node":"n","app":"a"}'
    assert bytes(entity_with_key(b'{"id":"c"}', key)) == b'{"key":' + key_json + b',"id":"c"}'
    assert bytes(entity_with_key(b"{}", key)) == b'{"key":' + key_json + b"}"
    assert bytes(entity_with_key(b" { \n } ", key)) == b' {"key":' + key_json + b" \n } "
    assert json.loads(bytes(entity_with_key(b'{\n  "id": "c"\n}', key))) == {
        "key": json.loads(key_json),
        "id": "c",
    }
    replaced = entity_with_key(b'{"id":"c","key":{"id":"old"}}', key)
    assert bytes(replaced) == b'{"id":"c","key":' + key_json + b"}"
    escaped = entity_with_key(b'{"\\u006bey":1,"id":"c"}', key)
    assert json.loads(bytes(escaped)) == {"key": json.loads(key_json), "id": "c"}
    assert bytes(entity_with_key(b'{"id":"a\\"b"}', key)) == (
        b'{"key":' + key_json + b',"id":"a\\"b"}'
    )
    for bad in (b"[]", b"", b"x{}"):
        with pytest.raises(ProtocolError):
            entity_with_key(bad, key)


# --- announcements ---------------------------------------------------------------------------


def test_announcement_fields_are_always_sent() -> None:
    assert encode_announcement(Announcement()) == b'{"node":"","application":""}'
    assert decode_announcement(b"{}") == Announcement()
    with pytest.raises(ProtocolError, match="invalid announcement"):
        decode_announcement(b'{"node":1}')


# --- events ----------------------------------------------------------------------------------

EVENT = b'{"application":"test","asterisk_id":"N","timestamp":"t","type":"Dial"}'


def test_stamp_event_fills_missing_fields_at_the_front() -> None:
    raw = b'{"type":"StasisStart","timestamp":"t"}'
    assert stamp_event(raw, "app", "node") == (
        b'{"application":"app","asterisk_id":"node","type":"StasisStart","timestamp":"t"}'
    )
    assert stamp_event(b"{}", "a", "n") == b'{"application":"a","asterisk_id":"n"}'
    assert stamp_event(b'{"application":"mine"}', "a", "n") == (
        b'{"asterisk_id":"n","application":"mine"}'
    )


def test_stamp_event_replaces_empty_or_odd_fields_in_place() -> None:
    raw = b'{"type":"X","application":"","asterisk_id":"N"}'
    assert stamp_event(raw, "a", "n") == b'{"type":"X","application":"a","asterisk_id":"N"}'
    raw = b'{"application":5,"type":"X"}'
    assert stamp_event(raw, "a", "n") == b'{"asterisk_id":"n","application":"a","type":"X"}'


def test_stamp_event_looks_only_at_the_top_level() -> None:
    raw = b'{"userevent":{"application":"x","asterisk_id":"y"},"type":"ChannelUserevent"}'
    stamped = json.loads(stamp_event(raw, "a", "n"))
    assert (stamped["application"], stamped["asterisk_id"]) == ("a", "n")


def test_with_dialog_goes_after_application_like_go() -> None:
    assert with_dialog(EVENT, "d") == (
        b'{"application":"test","dialog":"d","asterisk_id":"N","timestamp":"t","type":"Dial"}'
    )
    assert with_dialog(b'{"application":"test"}', "d") == b'{"application":"test","dialog":"d"}'


def test_with_dialog_otherwise_goes_to_the_front() -> None:
    raw = b'{"type":"Dial","application":"test"}'
    assert with_dialog(raw, "d") == b'{"dialog":"d","type":"Dial","application":"test"}'
    assert with_dialog(b"{}", "d") == b'{"dialog":"d"}'
    assert with_dialog(b'{"application": "test"}', "d") == (b'{"dialog":"d","application": "test"}')


def test_with_dialog_replaces_an_existing_dialog() -> None:
    raw = b'{"application":"test","dialog":"old","type":"Dial"}'
    assert with_dialog(raw, "new") == b'{"application":"test","dialog":"new","type":"Dial"}'


def test_event_helpers_refuse_non_objects() -> None:
    for bad in (b"[]", b"null", b"nope", b""):
        with pytest.raises(ProtocolError, match="invalid event"):
            stamp_event(bad, "a", "n")
        with pytest.raises(ProtocolError, match="invalid event"):
            with_dialog(bad, "d")
    with pytest.raises(ValueError, match="non-empty dialog"):
        with_dialog(EVENT, "")


# --- properties ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
member_names = st.sampled_from(["application", "asterisk_id", "dialog", "key", "type"]) | st.text(
    max_size=8
)
json_objects = st.dictionaries(member_names, json_values, max_size=6)
layouts = st.sampled_from(
    [
        {"separators": (",", ":")},
        {"separators": (", ", ": ")},
        {"indent": 2},
        {"separators": (",", ":"), "ensure_ascii": False},
    ]
)
texts = st.text(min_size=1, max_size=12)


def dump(obj: Any, layout: dict[str, Any]) -> bytes:
    return json.dumps(obj, **layout).encode()


@given(json_objects, layouts, texts)
def test_with_dialog_property(obj: dict[str, Any], layout: dict[str, Any], dialog: str) -> None:
    produced = json.loads(with_dialog(dump(obj, layout), dialog))
    assert produced == {**obj, "dialog": dialog}
    if "dialog" in obj:
        assert list(produced) == list(obj)


@given(json_objects, layouts, texts, texts)
def test_stamp_event_property(
    obj: dict[str, Any], layout: dict[str, Any], app: str, node: str
) -> None:
    raw = dump(obj, layout)
    stamped = stamp_event(raw, app, node)

    def filled(value: Any) -> bool:
        return isinstance(value, str) and value != ""

    if filled(obj.get("application")) and filled(obj.get("asterisk_id")):
        assert stamped is raw
    expected = dict(obj)
    if not filled(obj.get("application")):
        expected["application"] = app
    if not filled(obj.get("asterisk_id")):
        expected["asterisk_id"] = node
    assert json.loads(stamped) == expected


keys = st.builds(Key, kind=st.text(max_size=5), id=st.text(max_size=5), app=st.text(max_size=5))


@given(json_objects, layouts, keys)
def test_entity_with_key_property(obj: dict[str, Any], layout: dict[str, Any], key: Key) -> None:
    produced = json.loads(bytes(entity_with_key(dump(obj, layout), key)))
    assert produced == {**obj, "key": json.loads(encode(key))}
    if "key" not in obj:
        assert next(iter(produced)) == "key"


decoders = st.sampled_from([decode_request, decode_response, decode_announcement])


@given(decoders, st.binary(max_size=64))
def test_decoders_on_arbitrary_bytes(decoder: Any, data: bytes) -> None:
    try:
        decoder(data)
    except ProtocolError:
        pass


@given(decoders, json_values | json_objects)
def test_decoders_on_arbitrary_json(decoder: Any, value: Any) -> None:
    try:
        result = decoder(json.dumps(value).encode())
    except ProtocolError:
        return
    assert isinstance(result, Request | Response | Announcement)


request_bodies = st.fixed_dictionaries(
    {"kind": st.text(max_size=5)},
    optional={
        "key": st.none() | st.builds(dict, id=st.text(max_size=3)),
        "channel_play": st.fixed_dictionaries({}, optional={"playback_id": scalars}),
        "sound_list": st.fixed_dictionaries({"filters": st.none() | json_values}),
        "channel_user_event": st.fixed_dictionaries({"UserEvent": json_values}),
    },
)


@given(request_bodies)
def test_decode_request_on_near_valid_bodies(body: dict[str, Any]) -> None:
    try:
        request = decode_request(json.dumps(body).encode())
    except ProtocolError:
        return
    assert decode_request(encode_request(request)) == request
