"""Go-compatible JSON helpers."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_proxy.protocol import ProtocolError, decode, encode, go_escape


def test_go_escape() -> None:
    encoded = encode({"callerId": '"Golden" <1000> & \u2028\u2029'})
    assert go_escape(encoded) == (
        b'{"callerId":"\\"Golden\\" \\u003c1000\\u003e \\u0026 \\u2028\\u2029"}'
    )
    assert go_escape(b'{"a":1}') == b'{"a":1}'


def test_encode_sorts_map_keys_like_go() -> None:
    assert encode({"b": 1, "a": {"d": 1, "c": 2}}) == b'{"a":{"c":2,"d":1},"b":1}'


class Shape(msgspec.Struct):
    name: str = ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "invalid thing: not JSON"),
        (b"[]", "Expected `object`, got `array`"),
        (b'{"name":1}', "Expected `str`, got `int` - at `$.name`"),
        (b"[" * 100_000, "invalid thing"),
        (b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_decode_raises_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("$", r"\$")):
        decode(data, Shape, what="thing")


def test_decode_ignores_unknown_fields() -> None:
    assert decode(b'{"name":"x","extra":[1]}', Shape, what="thing") == Shape("x")


@given(st.text())
def test_go_escape_keeps_the_json_value(text: str) -> None:
    assert json.loads(go_escape(encode(text))) == text
