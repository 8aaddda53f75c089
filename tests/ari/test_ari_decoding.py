"""Events and entities decode the same whether Asterisk or a Go ari-proxy server wrote them.

The Go server re-encodes from its own structs: absent objects arrive as zero values (`null` for
objects, lists and maps, `{}` for an empty caller, a `replace_channel` full of empty strings and
Go's zero time). Each case below pairs Go's shape with Asterisk's for the same content.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from ari_proxy import UnknownEvent, event_type, raw_event
from ari_proxy.api import decode_event, event_keys
from ari_proxy.ari.models import Bridge, Channel, ChannelVarset, Dial, StasisStart
from ari_proxy.protocol import ProtocolError
from ari_proxy.spec._decoding import (
    clear_zero_models,
    decode_lenient,
    decode_model,
    is_zero_model,
)

# The Go server's StasisStart, verbatim except IDs (issue: our client could not take this call).
GO_STASIS_START = (
    b'{"application":"gsv","asterisk_id":"02:fc:00:00:00:01",'
    b'"timestamp":"2026-12-03T23:04:50.593+0000","type":"StasisStart","args":[],'
    b'"channel":{"id":"1796339090.258","name":"Local/wait@default-00000081;1","state":"Up",'
    b'"accountcode":"","caller":{},"connected":{},'
    b'"creationtime":"2026-12-03T23:04:50.592+0000",'
    b'"dialplan":{"context":"default","exten":"wait","priority":1},"channelvars":null},'
    b'"replace_channel":{"id":"","name":"","state":"","accountcode":"","caller":null,'
    b'"connected":null,"creationtime":"1970-01-01T00:00:00.000+0000","dialplan":null,'
    b'"channelvars":null}}'
)
# The same event as Asterisk writes it: absent things left out.
ASTERISK_STASIS_START = (
    b'{"application":"gsv","asterisk_id":"02:fc:00:00:00:01",'
    b'"timestamp":"2026-12-03T23:04:50.593+0000","type":"StasisStart","args":[],'
    b'"channel":{"id":"1796339090.258","name":"Local/wait@default-00000081;1","state":"Up",'
    b'"accountcode":"","caller":{"name":"","number":""},"connected":{"name":"","number":""},'
    b'"creationtime":"2026-12-03T23:04:50.592+0000",'
    b'"dialplan":{"context":"default","exten":"wait","priority":1}}}'
)
ZERO_CHANNEL: dict[str, Any] = {
    "id": "",
    "name": "",
    "state": "",
    "accountcode": "",
    "caller": None,
    "connected": None,
    "creationtime": "1970-01-01T00:00:00.000+0000",
    "dialplan": None,
    "channelvars": None,
}


def test_go_stasis_start_is_a_stasis_start() -> None:
    event = decode_event(GO_STASIS_START)
    assert isinstance(event, StasisStart)
    assert event.channel.id == "1796339090.258"
    assert event.channel.dialplan.exten == "wait"
    assert event.replace_channel is None  # all zero values: no replacing channel
    assert event == decode_event(ASTERISK_STASIS_START)
    assert raw_event(event)["replace_channel"]["creationtime"].startswith("1970")  # kept as sent
    assert event_keys(event) == event_keys(decode_event(ASTERISK_STASIS_START))


def test_a_real_replace_channel_is_kept() -> None:
    body = json.loads(GO_STASIS_START)
    body["replace_channel"] = dict(ZERO_CHANNEL, id="old.1", name="PJSIP/a-1")
    event = decode_event(json.dumps(body).encode())
    assert isinstance(event, StasisStart)
    assert event.replace_channel is not None
    assert (event.replace_channel.id, event.replace_channel.caller.name) == ("old.1", "")
    assert event.replace_channel.dialplan.context == ""


@pytest.mark.parametrize("field", ["caller", "forwarded"])
def test_go_dial_with_zero_channels(field: str) -> None:
    # Go's Dial: caller and forwarded are zero channels when absent; peer is a real one.
    peer = dict(ZERO_CHANNEL, id="1.2", name="Local/x-1;1", caller={}, connected={})
    body = {
        "type": "Dial",
        "application": "a",
        "timestamp": "2026-12-03T23:04:50.593+0000",
        "caller": ZERO_CHANNEL,
        "forwarded": ZERO_CHANNEL,
        "peer": peer,
        "dialstatus": "RINGING",
    }
    event = decode_event(json.dumps(body).encode())
    assert isinstance(event, Dial)
    assert getattr(event, field) is None
    assert event.peer.id == "1.2"
    assert event.peer.dialplan.context == ""


def test_go_global_varset_has_no_channel() -> None:
    body = {"type": "ChannelVarset", "variable": "G", "value": "1", "channel": ZERO_CHANNEL}
    event = decode_event(json.dumps(body).encode())
    assert isinstance(event, ChannelVarset)
    assert event.channel is None
    assert (event.variable, event.value) == ("G", "1")


def test_go_bridge_with_null_channels() -> None:
    body = b'{"id":"b1","technology":"simple_bridge","bridge_type":"mixing","channels":null}'
    bridge = decode_model(body, Bridge)
    assert (bridge.id, bridge.channels) == ("b1", [])
    with_null_item = decode_lenient(b'{"id":"b1","channels":["c1",null]}', Bridge)
    assert with_null_item.channels == ["c1"]


def test_null_means_absent_for_every_required_field() -> None:
    # Every field of Channel set to null decodes like an empty document.
    nulls = {field.encode_name: None for field in msgspec.structs.fields(Channel)}
    assert decode_model(json.dumps(nulls).encode(), Channel) == Channel()


def test_asterisk_shapes_take_the_fast_path_unchanged() -> None:
    event = decode_event(ASTERISK_STASIS_START)
    assert event == msgspec.json.decode(ASTERISK_STASIS_START, type=StasisStart)
    assert "_body" not in event.__dict__  # no second parse of the JSON


@pytest.mark.parametrize(
    ("value", "zero"),
    [
        (Channel(), True),
        (Channel(creationtime="1970-01-01T00:00:00.000+0000"), True),
        (Channel(creationtime="0001-01-01T00:00:00Z"), True),
        (Channel(channelvars={}), True),
        (Channel(id="x"), False),
        (Channel(channelvars={"A": "1"}), False),
        (Channel(dialplan=msgspec.structs.replace(Channel().dialplan, priority=1)), False),
    ],
)
def test_is_zero_model(value: Channel, zero: bool) -> None:
    assert is_zero_model(value) is zero


def test_clear_zero_models_leaves_non_models_alone() -> None:
    assert clear_zero_models(42) == 42
    assert clear_zero_models(Channel(id="x")) == Channel(id="x")


def test_a_shape_that_still_does_not_fit_is_an_unknown_event() -> None:
    body = {"type": "StasisStart", "application": "a", "channel": "not an object"}
    event = decode_event(json.dumps(body).encode())
    assert isinstance(event, UnknownEvent)
    assert event_type(event) == "StasisStart"
    assert raw_event(event)["channel"] == "not an object"


@pytest.mark.parametrize("raw", [b"[1]", b'{"type": 3}', b"{", b'"text"'])
def test_not_an_event_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_event(raw)


def test_decode_model_names_the_model_on_failure() -> None:
    with pytest.raises(ProtocolError, match="cannot read Bridge"):
        decode_model(b'{"channels": 7}', Bridge)
