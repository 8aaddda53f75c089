"""Choosing a message-bus backend from its URL, and URLs that are safe to log.

`nats://` and `tls://` select NATS; `amqp://` and `amqps://` select RabbitMQ (imported only
then, so NATS users never import aio-pika). Credentials in a URL never reach an error message
or a log line: everything that shows a URL shows `redact_url(url)`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any, cast

from ._transport import Transport

__all__ = [
    "NATS_SCHEMES",
    "RABBITMQ_SCHEMES",
    "connect",
    "redact_url",
    "scrub",
    "url_scheme",
    "url_secrets",
]

NATS_SCHEMES = frozenset({"nats", "tls"})
RABBITMQ_SCHEMES = frozenset({"amqp", "amqps"})

# Query parameters that carry secrets in the URLs of common clients (`?password=`, `?token=`).
_SECRET_QUERY = re.compile(
    r"([?&;](?:pass|password|passwd|token|auth_token|secret|key|nkey|seed)=)[^&;#]*",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """`url` with its password (or bare token) and secret query values replaced by `***`.

    `nats://user:pass@host` gives `nats://user:***@host`, `nats://token@host` gives
    `nats://***@host`. The user info runs to the *last* `@`, so a password with an unescaped
    `@` or `/` is still hidden; at worst a little more than the secret is hidden.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = (f"{user}:***" if colon else "***") + rest[at:]
    rest = _SECRET_QUERY.sub(r"\1***", rest)
    return f"{scheme}://{rest}" if sep else rest


def url_secrets(urls: Sequence[str], *given: str | None) -> list[str]:
    """The secrets to hide in any text: the `given` ones and those in the URLs' user info.

    A password, or a bare user info (`nats://token@host` carries a token). Longest first, so
    that `scrub` hides a secret that contains another one whole.
    """
    found = {secret for secret in given if secret}
    for url in urls:
        _, sep, rest = url.partition("://")
        userinfo, at, _ = (rest if sep else url).rpartition("@")
        if at and userinfo:
            user, colon, secret = userinfo.partition(":")
            found.add(secret if colon else user)
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every one of `secrets` replaced by `***` (for error texts from libraries)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


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
