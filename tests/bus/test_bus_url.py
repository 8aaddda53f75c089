"""Choosing the backend from the URL scheme, and redacting URLs for logs and errors."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from ari_proxy.bus import NatsTransport, connect, redact_url
from ari_proxy.bus._url import url_scheme


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
