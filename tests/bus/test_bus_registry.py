"""The registry of bus backends: choosing one by URL scheme, building its transport from the
common settings; and redacting URLs for logs and errors."""

from __future__ import annotations

import dataclasses
import ssl
import sys
import types
from typing import Any

import pytest

from ari_proxy.bus import (
    Backend,
    BusSettings,
    MemoryTransport,
    NatsTransport,
    backend_for,
    backends,
    connect,
    expected_schemes,
    find_backend,
    lift_credentials,
    redact_url,
    register,
    unregister,
    url_scheme,
)
from ari_proxy.server import SETTINGS


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://ari:s3cret@nats:4222", "nats://ari:***@nats:4222"),
        ("nats://s3cret@nats:4222", "nats://***@nats:4222"),
        ("amqp://guest:guest@rabbitmq:5672/", "amqp://guest:***@rabbitmq:5672/"),
        ("amqps://u:p%40ss@h/vhost", "amqps://u:***@h/vhost"),
        ("nats://u:p@ss/w0rd@h:4222", "nats://u:***@h:4222"),  # unescaped @ and / in the secret
        ("tls://u:pw@h:4222?token=abc&x=1", "tls://u:***@h:4222?token=***&x=1"),
        ("amqp://h/?password=abc", "amqp://h/?password=***"),
        ("u:s3cret@h:4222", "u:***@h:4222"),
        ("", ""),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("NATS://h", "nats"), ("amqps://h", "amqps"), ("h:4222", ""), ("://h", ""), ("a b://h", "")],
)
def test_url_scheme(url: str, scheme: str) -> None:
    assert url_scheme(url) == scheme


def test_nats_schemes_give_a_nats_transport() -> None:
    bus = connect("nats://127.0.0.1:4222", name="x")
    assert isinstance(bus, NatsTransport) and bus.name == "x"
    cluster = connect(["nats://a:4222", "TLS://u:pw@b:4222"], prefix="ari.")
    assert isinstance(cluster, NatsTransport)
    assert cluster.servers == ["nats://a:4222", "TLS://u:***@b:4222"]


def test_amqp_schemes_load_the_rabbitmq_transport_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[list[str], dict[str, Any]]] = []

    class FakeRabbitTransport:
        def __init__(self, urls: list[str], **options: Any) -> None:
            made.append((urls, options))

    fake = types.ModuleType("ari_proxy.bus._rabbitmq")
    fake.RabbitTransport = FakeRabbitTransport  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ari_proxy.bus._rabbitmq", fake)
    bus = connect(["amqp://guest:guest@h:5672/", "amqps://h2/"], prefix="ari.", name="n")
    assert isinstance(bus, FakeRabbitTransport)
    assert made == [
        (["amqp://guest:guest@h:5672/", "amqps://h2/"], {"prefix": "ari.", "name": "n"})
    ]


@pytest.mark.parametrize(
    "urls",
    [
        "http://admin:hunter2@host:8088",
        "redis://:hunter2@host",
        "hunter2@host:4222",
        "nats:/hunter2@host",
        ["nats://a:4222", "ws://u:hunter2@b"],
    ],
)
def test_unknown_schemes_are_refused_without_credentials(urls: str | list[str]) -> None:
    with pytest.raises(ValueError, match="unknown message bus URL scheme") as caught:
        connect(urls)
    assert "hunter2" not in str(caught.value)


def test_mixed_backends_and_no_url_are_refused() -> None:
    with pytest.raises(ValueError, match="mix NATS and RabbitMQ") as caught:
        connect(["nats://u:hunter2@a:4222", "amqp://u:hunter2@b"])
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="no message bus URL"):
        connect([])


def test_nats_options_are_checked() -> None:
    with pytest.raises(ValueError, match="creds_file"):
        NatsTransport(["nats://h"], creds_file="/nonexistent/user.creds")
    with pytest.raises(ValueError, match="at least one"):
        NatsTransport([])
    with pytest.raises(ValueError, match="max_inflight"):
        NatsTransport(["nats://h"], max_inflight=0)


def test_the_built_in_backends() -> None:
    assert [(b.name, b.schemes) for b in backends()] == [
        ("NATS", ("nats", "tls")),
        ("RabbitMQ", ("amqp", "amqps")),
    ]
    assert expected_schemes() == "nats://, tls://, amqp:// or amqps://"
    assert find_backend("TLS://h") is backend_for("nats://h")
    assert find_backend("redis://h") is None


def test_bus_settings_are_the_servers_messagebus_settings() -> None:
    # `messagebus.<name>` (but the URLs) fills `BusSettings.<name>`: the server passes them on
    # without knowing which backend takes what. (`messagebus.password_file` is where the
    # server reads `password` from.)
    server_side = {
        s.name.removeprefix("messagebus.")
        for s in SETTINGS
        if s.name.startswith("messagebus.")
        and s.name not in ("messagebus.url", "messagebus.password_file")
    }
    assert server_side == {f.name for f in dataclasses.fields(BusSettings)}
    for backend in backends():
        assert backend.settings <= server_side


def test_nats_gets_credentials_as_options() -> None:
    nats = backend_for("nats://h")
    settings = BusSettings(prefix="p.", name="n", user="u", password="pw", token="t")
    urls, options = nats.arguments(["nats://h:4222"], settings)
    assert urls == ["nats://h:4222"]
    assert options == {
        "prefix": "p.",
        "name": "n",
        "user": "u",
        "password": "pw",
        "token": "t",
        "creds_file": None,
        "nkeys_seed": None,
        "tls": None,
    }
    assert nats.unsupported(settings) == []


def test_tls_files_become_one_context(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BusSettings().ssl_context() is None
    context = ssl.create_default_context()
    monkeypatch.setattr(BusSettings, "ssl_context", lambda self: context)
    settings = BusSettings(tls_ca_file="ca.pem")
    assert backend_for("tls://h").arguments(["tls://h"], settings)[1]["tls"] is context
    assert backend_for("amqps://h").arguments(["amqps://h"], settings)[1]["ssl_context"] is context


def test_rabbitmq_gets_credentials_in_its_urls() -> None:
    rabbitmq = backend_for("amqp://h")
    settings = BusSettings(user="u", password="p w", name="n")
    urls, options = rabbitmq.arguments(["amqp://rmq:5672/", "amqps://x:y@h2/vh"], settings)
    assert urls == ["amqp://u:p%20w@rmq:5672/", "amqps://x:y@h2/vh"]  # a URL's own user wins
    assert options == {"prefix": "ari.", "name": "n"}  # no TLS given: no ssl_context
    assert rabbitmq.unsupported(BusSettings(token="t", creds_file="c", user="u")) == [
        "token",
        "creds_file",
    ]


def test_connect_with_settings_lets_options_override() -> None:
    bus = connect("nats://h:4222", settings=BusSettings(name="from-settings"), name="explicit")
    assert isinstance(bus, NatsTransport) and bus.name == "explicit"


def test_credentials_in_urls_are_lifted_only_where_the_backend_shares_them() -> None:
    urls, user, password = lift_credentials(
        ["nats://bob:pa%40ss@n1:4222", "nats://tok@n2:4222", "tls://[::1]:4222"]
    )
    assert urls == ("nats://n1:4222", "nats://tok@n2:4222", "tls://[::1]:4222")
    assert (user, password) == ("bob", "pa@ss")
    assert lift_credentials(["amqp://u:p@h/"]) == (("amqp://u:p@h/",), "", "")


def test_registering() -> None:
    toy = Backend("Mem", ("mem",), lambda urls, **options: MemoryTransport(**options))
    register(toy)
    try:
        assert register(toy) is toy  # again: no change
        assert backend_for("mem://x") is toy
        bus = connect("mem://x", settings=BusSettings(prefix="m.", name="n"))
        assert isinstance(bus, MemoryTransport) and (bus.prefix, bus.name) == ("m.", "n")
        with pytest.raises(ValueError, match="already selects NATS"):
            register(Backend("Imposter", ("nats",), NatsTransport))
    finally:
        unregister(toy)
    assert find_backend("mem://x") is None
    with pytest.raises(ValueError, match="lower-case URL schemes"):
        Backend("Bad", ("Bad Scheme",), NatsTransport)
    with pytest.raises(ValueError, match="no such settings"):
        Backend("Bad", ("bad",), NatsTransport, settings=frozenset({"colour"}))
