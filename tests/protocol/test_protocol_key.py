"""Key: Go's JSON form and Match semantics (docs/protocol.md, "Envelopes")."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_proxy.protocol import EntityKind, Key, encode

FULL = Key("channel", "c1", "node1", "dlg", "app1")


def test_empty_key_encodes_as_empty_object() -> None:
    assert encode(Key()) == b"{}"
    assert msgspec.json.decode(b"{}", type=Key) == Key()


def test_fields_are_in_go_order_and_empty_ones_omitted() -> None:
    assert encode(FULL) == (
        b'{"kind":"channel","id":"c1","node":"node1","dialog":"dlg","app":"app1"}'
    )
    assert encode(Key(kind="bridge", app="a")) == b'{"kind":"bridge","app":"a"}'
    assert Key.__struct_fields__ == ("kind", "id", "node", "dialog", "app")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (FULL, None, True),
        (FULL, FULL, True),
        (FULL, Key(), True),
        (Key(), Key(kind="x", id="y"), True),
        (FULL, Key(kind="channel"), True),
        (FULL, Key(kind="bridge"), False),
        (FULL, Key(id="c2"), False),
        (FULL, Key(node="node2"), False),
        (FULL, Key(dialog="other"), False),
        (FULL, Key(app="app2"), False),
        (FULL, Key(kind="channel", id="c1", app="app1"), True),
        (Key(kind="channel", id="c1"), Key(node="n", app="a", dialog="d"), True),
        (Key(app="a"), Key(app="a", node="n"), True),
    ],
)
def test_match_table(a: Key, b: Key | None, expected: bool) -> None:
    assert a.match(b) is expected
    if b is not None:
        assert b.match(a) is expected


def test_new_keeps_node_app_and_dialog() -> None:
    assert FULL.new(EntityKind.PLAYBACK, "p1") == Key("playback", "p1", "node1", "dlg", "app1")
    assert type(FULL.new(EntityKind.PLAYBACK, "p1").kind) is str


def test_stamp_overwrites_node_and_app_only() -> None:
    assert FULL.stamp("N", "A") == Key("channel", "c1", "N", "dlg", "A")
    assert Key().stamp("N", "A") == Key(node="N", app="A")


def test_with_dialog_and_completeness() -> None:
    assert FULL.with_dialog("d2").dialog == "d2"
    assert FULL.with_dialog("") == Key("channel", "c1", "node1", "", "app1")
    assert FULL.is_complete
    assert not Key(app="a").is_complete
    assert not Key(node="n").is_complete


def test_str_is_readable_and_keys_are_hashable() -> None:
    assert str(FULL) == "channel/c1@app1.node1#dlg"
    assert str(Key()) == "Key()"
    assert str(Key(kind="bridge", app="a")) == "bridge@a"
    assert len({FULL, Key(**msgspec.structs.asdict(FULL))}) == 1


def test_entity_kinds_are_the_go_constants() -> None:
    assert {k.value for k in EntityKind} == {
        "application", "bridge", "channel", "config", "devicestate", "endpoint",
        "liverecording", "logging", "mailbox", "module", "playback", "sound",
        "storedrecording", "variable",
    }  # fmt: skip


tokens = st.sampled_from(["", "a", "b"]) | st.text(max_size=8)
keys = st.builds(Key, kind=tokens, id=tokens, node=tokens, dialog=tokens, app=tokens)


@given(keys)
def test_key_json_round_trip(key: Key) -> None:
    assert msgspec.json.decode(encode(key), type=Key) == key


@given(keys, keys)
def test_match_is_symmetric(a: Key, b: Key) -> None:
    assert a.match(b) == b.match(a)


@given(keys)
def test_match_is_reflexive_and_empty_key_matches_all(key: Key) -> None:
    assert key.match(key)
    assert key.match(Key())
    assert key.match(None)
