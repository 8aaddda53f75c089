"""Subjects: the forms of docs/protocol.md, "Subjects" and the token rules."""

from __future__ import annotations

import pytest

from ari_proxy.protocol import (
    BusFlavour,
    Key,
    ProtocolError,
    RequestClass,
    Subjects,
    check_token,
    valid_token,
)

S = Subjects()
NODE = "02:fc:00:00:00:01"


@pytest.mark.parametrize("cls", list(RequestClass))
def test_request_forms(cls: RequestClass) -> None:
    assert S.request(cls) == f"ari.{cls}"
    assert S.request(cls, "app") == f"ari.{cls}.app"
    assert S.request(cls, "app", NODE) == f"ari.{cls}.app.{NODE}"
    assert S.request(str(cls), "app") == f"ari.{cls}.app"


def test_node_without_app_is_dropped_as_in_go() -> None:
    assert S.request(RequestClass.GET, "", NODE) == "ari.get"


def test_fixed_subjects() -> None:
    assert S.event("app", NODE) == f"ari.event.app.{NODE}"
    assert S.dialog_event("golden-1-chan") == "ari.dialogevent.golden-1-chan"
    assert S.ping == "ari.ping"
    assert S.announce == "ari.announce"
    assert Subjects("my.ari.").announce == "my.ari.announce"


@pytest.mark.parametrize(
    ("key", "nats", "rabbitmq"),
    [
        (None, "ari.event.>", "ari.event.#"),
        (Key(dialog="d", app="a", node="n"), "ari.dialogevent.d", "ari.dialogevent.d"),
        (Key(kind="channel", id="c"), "ari.event.>", "ari.event.#"),
        (Key(node="n"), "ari.event.>", "ari.event.#"),
        (Key(app="a"), "ari.event.a.>", "ari.event.a.#"),
        (Key(app="a", node="n"), "ari.event.a.n", "ari.event.a.n"),
    ],
)
def test_event_subscriptions(key: Key | None, nats: str, rabbitmq: str) -> None:
    assert S.event_subscription(key, BusFlavour.NATS) == nats
    assert S.event_subscription(key, "rabbitmq") == rabbitmq


def test_listen_subscription() -> None:
    assert S.listen_subscription("app", "nats") == "ari.event.app.>"
    assert S.listen_subscription("app", BusFlavour.RABBITMQ) == "ari.event.app.#"


def test_server_subscriptions() -> None:
    subs = S.server_subscriptions("app", NODE)
    assert len(subs) == 12
    assert subs[:3] == (
        (RequestClass.GET, "ari.get"),
        (RequestClass.GET, "ari.get.app"),
        (RequestClass.GET, f"ari.get.app.{NODE}"),
    )
    creates = [subject for cls, subject in subs if cls is RequestClass.CREATE]
    assert creates == ["ari.create", "ari.create.app", f"ari.create.app.{NODE}"]
    assert {cls for cls, _ in subs} == set(RequestClass)


BAD_TOKENS = ["", "a.b", "a*", "a>", "a#", "a b", "\n", "a\tb", "a\x00", "a\x7f", "a\u00a0b"]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_invalid_tokens_are_rejected(token: str) -> None:
    assert not valid_token(token)
    with pytest.raises(ProtocolError, match="application"):
        check_token(token, "application")
    if token:
        with pytest.raises(ProtocolError):
            S.request(RequestClass.GET, token)
        with pytest.raises(ProtocolError):
            S.request(RequestClass.GET, "app", token)
        if "." not in token:  # `<app>.<id>` is a scoped dialog (docs/security.md)
            with pytest.raises(ProtocolError):
                S.dialog_event(token)
        with pytest.raises(ProtocolError):
            S.event_subscription(Key(app=token), BusFlavour.NATS)
    with pytest.raises(ProtocolError):
        S.event("app", token)


@pytest.mark.parametrize("dialog", ["a.b.c", "a.", ".b", "a..b", "a.*", "a b.c", "a.\n"])
def test_dialogs_take_at_most_two_tokens(dialog: str) -> None:
    with pytest.raises(ProtocolError, match="dialog"):
        S.dialog_event(dialog)


def test_a_scoped_dialog_is_two_tokens() -> None:
    assert S.dialog_event("app.d1").endswith(".app.d1")


@pytest.mark.parametrize("token", [NODE, "test", "golden-hrrmvk-chan", "Stasis:x", "ü-app"])
def test_valid_tokens(token: str) -> None:
    assert valid_token(token)
    assert check_token(token, "node") == token


@pytest.mark.parametrize("prefix", ["ari", "", ".", "a..", "a b.", "a*."])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ProtocolError):
        Subjects(prefix)


def test_unknown_class_and_bus_are_value_errors() -> None:
    with pytest.raises(ValueError):
        S.request("list")
    with pytest.raises(ValueError):
        S.event_subscription(None, "kafka")


def test_a_token_or_dialog_longer_than_max_token_is_refused() -> None:
    # NATS drops the connection that sends a protocol line over 4 KiB: a dialog named by a
    # hostile request must never make one (found by the fuzz run).
    from ari_proxy.bus._transport import MAX_SUBJECT, check_subject
    from ari_proxy.protocol import MAX_TOKEN, ProtocolError, check_dialog, valid_dialog

    assert valid_token("a" * MAX_TOKEN) and not valid_token("a" * (MAX_TOKEN + 1))
    assert valid_dialog(f"app.{'d' * MAX_TOKEN}") and not valid_dialog("x" * 70_000)
    with pytest.raises(ProtocolError, match=f"1 to {MAX_TOKEN} characters") as refused:
        check_dialog("x" * 70_000)
    assert len(str(refused.value)) < 400  # the message shows the start of it, not all of it
    with pytest.raises(ProtocolError, match="more than"):
        check_subject("a." * MAX_SUBJECT, wildcards=False)
