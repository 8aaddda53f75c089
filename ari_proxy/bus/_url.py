"""Choosing a message-bus backend from its URL.

`nats://` and `tls://` select NATS; `amqp://` and `amqps://` select RabbitMQ (imported only
then, so NATS users never import aio-pika). Error messages show URLs through `redact_url`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any, cast

from .._redact import redact_url
from ._transport import Transport

__all__ = [
    "NATS_SCHEMES",
    "RABBITMQ_SCHEMES",
    "connect",
    "url_scheme",
]

NATS_SCHEMES = frozenset({"nats", "tls"})
RABBITMQ_SCHEMES = frozenset({"amqp", "amqps"})


def url_scheme(url: str) -> str:
    """The lower-cased scheme of `url`, or "" when it has none."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else ""


def connect(urls: str | Sequence[str], **options: Any) -> Transport:
    """The transport for `urls` (one URL, or several of one cluster), not yet connected.

    The scheme picks the backend: `nats://`, `tls://` give a `NatsTransport`; `amqp://`,
    `amqps://` a `RabbitTransport`. `options` go to its constructor (`prefix`, `name`, ...).
    Call `await transport.connect()` next.

    Raises:
        ValueError: no URL, an unknown scheme, or schemes of different backends; the message
            shows the URL with its credentials redacted.
    """
    url_list = [urls] if isinstance(urls, str) else list(urls)
    if not url_list:
        raise ValueError("no message bus URL given")
    backends = {_backend(url) for url in url_list}
    if len(backends) > 1:
        shown = ", ".join(redact_url(url) for url in url_list)
        raise ValueError(f"message bus URLs mix NATS and RabbitMQ: {shown}")
    if backends == {"nats"}:
        from ._nats import NatsTransport

        return NatsTransport(url_list, **options)
    # Imported by name: RabbitMQ support (and aio-pika) loads only when a URL asks for it.
    module = importlib.import_module("ari_proxy.bus._rabbitmq")
    return cast(Transport, module.RabbitTransport(url_list, **options))


def _backend(url: str) -> str:
    scheme = url_scheme(url)
    if scheme in NATS_SCHEMES:
        return "nats"
    if scheme in RABBITMQ_SCHEMES:
        return "rabbitmq"
    shown = f"{scheme!r}" if scheme else "(none)"
    raise ValueError(
        f"unknown message bus URL scheme {shown} in {redact_url(url)!r}: "
        "expected nats://, tls://, amqp:// or amqps://"
    )
