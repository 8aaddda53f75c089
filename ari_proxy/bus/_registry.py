"""Bus backends by URL scheme: the one table that `connect()` and the server's configuration
consult.

A backend is a transport class (anything that implements `Transport` and is built as
`cls(urls, prefix=..., name=..., **options)`) and one `Backend` entry naming it: the URL schemes
that select it, which of the deployment's common `BusSettings` it takes and how they become
its constructor's arguments. Adding a bus is one module with the transport class and one
`register(Backend(...))`; nothing else changes (`tests/bus/toy_backend.py` shows it):

```python
register(Backend("Toy", ("toy",), ToyTransport))
bus = connect("toy://here", prefix="ari.")
```

Subjects need no entry: every transport takes the NATS-style subjects of the `Transport`
interface and maps them to its broker itself (RabbitMQ binds `>` as `*.#`).

NATS (`nats://`, `tls://`) and RabbitMQ (`amqp://`, `amqps://`) are registered here; RabbitMQ's
module (and aiormq) is imported only when a URL asks for it. Error messages show URLs through
`redact_url`.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .._exceptions import ConnectError
from .._redact import redact_url
from .._tls import client_context
from ._transport import Transport

__all__ = [
    "Backend",
    "BusSettings",
    "backend_for",
    "backends",
    "connect",
    "connect_within",
    "expected_schemes",
    "find_backend",
    "lift_credentials",
    "register",
    "unregister",
    "url_scheme",
]


@dataclass(frozen=True, slots=True)
class BusSettings:
    """What a deployment says about its bus whatever the backend: the server's `messagebus.*`
    settings (but the URLs), by the same names. An empty value is unset.

    `prefix` and `name` go to every backend; the others only to backends that list them in
    `Backend.settings` (the server's configuration refuses the rest).
    """

    prefix: str = "ari."
    name: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    creds_file: str = ""
    nkey_seed_file: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the `tls_*` files, or None when neither a CA nor a client
        certificate is given (the backend's own default then)."""
        if not (self.tls_ca_file or self.tls_cert_file):
            return None
        return client_context(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)

    def given(self) -> list[str]:
        """The names of the settings that are set, beyond `prefix` and `name`."""
        return [
            f.name
            for f in fields(self)
            if f.name not in _ALWAYS and getattr(self, f.name) != getattr(_UNSET, f.name)
        ]


_ALWAYS = frozenset({"prefix", "name"})
_UNSET = BusSettings()

Arguments = Callable[[list[str], BusSettings], tuple[list[str], dict[str, Any]]]
"""(URLs, settings) -> (the URLs, the keyword arguments) the transport class is built with."""


def common_arguments(urls: list[str], settings: BusSettings) -> tuple[list[str], dict[str, Any]]:
    """The URLs as they are, and `prefix` and `name`: what every transport takes."""
    return list(urls), {"prefix": settings.prefix, "name": settings.name}


@dataclass(frozen=True, eq=False)
class Backend:
    """One bus backend: which URLs select it and how its transport is built.

    Attributes:
        name: shown in messages (`NATS`, `RabbitMQ`).
        schemes: the lower-case URL schemes that select it, the first one its usual one.
        transport: the transport class (or any callable building one), or `"module:attr"` to
            import it only when a URL selects the backend.
        settings: the `BusSettings` fields it takes besides `prefix` and `name`.
        arguments: turns URLs and `BusSettings` into the URLs and keyword arguments of
            `transport` (by default the URLs, `prefix` and `name`).
        shared_credentials: user info in a URL is meant for every server of the cluster, so
            the server's configuration takes it out of the URLs into `user` and `password`
            (which also keeps it out of the URLs it logs).
    """

    name: str
    schemes: tuple[str, ...]
    transport: Callable[..., Transport] | str
    settings: frozenset[str] = frozenset()
    arguments: Arguments = common_arguments
    shared_credentials: bool = False

    def __post_init__(self) -> None:
        if not self.schemes or any(url_scheme(f"{s}://") != s for s in self.schemes):
            raise ValueError(f"bus backend {self.name}: schemes must be lower-case URL schemes")
        unknown = self.settings - {f.name for f in fields(BusSettings)}
        if unknown:
            raise ValueError(f"bus backend {self.name}: no such settings {sorted(unknown)}")

    def transport_class(self) -> Callable[..., Transport]:
        """The transport class, imported now if the entry names it by module."""
        if not isinstance(self.transport, str):
            return self.transport
        module, _, attr = self.transport.partition(":")
        return cast("Callable[..., Transport]", getattr(importlib.import_module(module), attr))

    def create(self, urls: Sequence[str], **options: Any) -> Transport:
        """A transport for `urls` (not yet connected), `options` going to its constructor."""
        return self.transport_class()(list(urls), **options)

    def unsupported(self, settings: BusSettings) -> list[str]:
        """The `settings` given that this backend does not take."""
        return [name for name in settings.given() if name not in self.settings]


# --- the registry ---------------------------------------------------------------------------------

_BACKENDS: list[Backend] = []
_BY_SCHEME: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Make `backend` selectable by its URL schemes; returns it.

    Raises:
        ValueError: one of its schemes already selects another backend.
    """
    for scheme in backend.schemes:
        taken = _BY_SCHEME.get(scheme)
        if taken is not None and taken is not backend:
            raise ValueError(f"the URL scheme {scheme}:// already selects {taken.name}")
    if backend not in _BACKENDS:
        _BACKENDS.append(backend)
    for scheme in backend.schemes:
        _BY_SCHEME[scheme] = backend
    return backend


def unregister(backend: Backend) -> None:
    """Forget `backend` (a test's own, say); its schemes select nothing any more."""
    if backend in _BACKENDS:
        _BACKENDS.remove(backend)
    for scheme in backend.schemes:
        if _BY_SCHEME.get(scheme) is backend:
            del _BY_SCHEME[scheme]


def backends() -> tuple[Backend, ...]:
    """The registered backends, in the order they were registered."""
    return tuple(_BACKENDS)


def url_scheme(url: str) -> str:
    """The lower-cased scheme of `url`, or "" when it has none."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else ""


def find_backend(url: str) -> Backend | None:
    """The backend `url`'s scheme selects, or None."""
    return _BY_SCHEME.get(url_scheme(url))


def expected_schemes() -> str:
    """The schemes that select a backend, for messages: `nats://, tls://, amqp:// or amqps://`."""
    shown = [f"{scheme}://" for backend in _BACKENDS for scheme in backend.schemes]
    return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)


def describe_mix(chosen: Sequence[Backend]) -> str:
    """`NATS and RabbitMQ`: the backends of `chosen`, in registration order."""
    names = [backend.name for backend in _BACKENDS if backend in chosen]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def backend_for(urls: str | Sequence[str]) -> Backend:
    """The one backend that every URL of `urls` selects.

    Raises:
        ValueError: no URL, an unknown scheme, or schemes of different backends; the message
            shows the URLs with their credentials redacted.
    """
    url_list = [urls] if isinstance(urls, str) else list(urls)
    if not url_list:
        raise ValueError("no message bus URL given")
    chosen: list[Backend] = []
    for url in url_list:
        backend = find_backend(url)
        if backend is None:
            scheme = url_scheme(url)
            shown = f"{scheme!r}" if scheme else "(none)"
            raise ValueError(
                f"unknown message bus URL scheme {shown} in {redact_url(url)!r}: "
                f"expected {expected_schemes()}"
            )
        if backend not in chosen:
            chosen.append(backend)
    if len(chosen) > 1:
        shown = ", ".join(redact_url(url) for url in url_list)
        raise ValueError(f"message bus URLs mix {describe_mix(chosen)}: {shown}")
    return chosen[0]


def connect(
    urls: str | Sequence[str], *, settings: BusSettings | None = None, **options: Any
) -> Transport:
    """The transport for `urls` (one URL, or several of one cluster), not yet connected.

    The scheme picks the backend (`nats://`, `tls://` give a `NatsTransport`; `amqp://`,
    `amqps://` a `RabbitTransport`; see `register` for more). `options` go to its constructor
    (`prefix`, `name`, ...). With `settings`, the backend turns them into constructor
    arguments first (URLs included), and `options` override those. Call
    `await transport.connect()` next.

    Raises:
        ValueError: no URL, an unknown scheme, or schemes of different backends (the message
            shows the URL with its credentials redacted), or a setting the backend does not
            take (a token with RabbitMQ).
    """
    url_list = [urls] if isinstance(urls, str) else list(urls)
    backend = backend_for(url_list)
    if settings is not None:
        unsupported = backend.unsupported(settings)
        if unsupported:
            raise ValueError(f"{backend.name} does not take {', '.join(unsupported)}")
        url_list, arguments = backend.arguments(url_list, settings)
        options = {**arguments, **options}
    return backend.create(url_list, **options)


async def connect_within(
    transport: Transport, urls: str | Sequence[str], timeout: float | None
) -> None:
    """`await transport.connect()`, for at most `timeout` seconds (None: as long as it takes).

    A transport retries its first connection forever, which suits a server that may start
    before its broker; a caller that must hear about an unreachable bus (a client, a command)
    bounds it here. Once connected, the transport reconnects forever as before.

    Raises:
        ConnectError: not connected within `timeout`; the transport is closed, and the message
            names the bus (URLs redacted) and why its latest attempt failed (the transport's
            `last_failure`, when it has one).
    """
    if timeout is None:
        await transport.connect()
        return
    try:
        async with asyncio.timeout(timeout):
            await transport.connect()
    except TimeoutError:
        url_list = [urls] if isinstance(urls, str) else list(urls)
        reason = str(getattr(transport, "last_failure", "") or "")
        await transport.close()
        backend = find_backend(url_list[0]) if url_list else None
        name = backend.name if backend is not None else "the message bus"
        shown = ", ".join(redact_url(url) for url in url_list)
        raise ConnectError(
            f"cannot connect to {name} at {shown} within {timeout:g}s"
            + (f": {reason}" if reason else "")
        ) from None


def lift_credentials(urls: Sequence[str]) -> tuple[tuple[str, ...], str, str]:
    """`urls` with the user info taken out of those whose backend has `shared_credentials`,
    and the user and password they carried (the last one wins); other URLs stay as they are.

    A URL with user info but no password (`nats://token@host`) keeps it: that is a token.
    """
    user = password = ""
    cleaned = []
    for url in urls:
        backend = find_backend(url)
        parts = urlsplit(url)
        if (
            backend is not None
            and backend.shared_credentials
            and parts.password is not None
            and (parts.username or parts.password)
        ):
            user, password = unquote(parts.username or ""), unquote(parts.password)
            netloc = parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if parts.port:
                netloc += f":{parts.port}"
            url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        cleaned.append(url)
    return tuple(cleaned), user, password


# --- the built-in backends ------------------------------------------------------------------------


def _nats_arguments(urls: list[str], settings: BusSettings) -> tuple[list[str], dict[str, Any]]:
    urls, options = common_arguments(urls, settings)
    options.update(
        user=settings.user or None,
        password=settings.password or None,
        token=settings.token or None,
        creds_file=settings.creds_file or None,
        nkeys_seed=settings.nkey_seed_file or None,
        tls=settings.ssl_context(),
    )
    return urls, options


def _rabbitmq_arguments(urls: list[str], settings: BusSettings) -> tuple[list[str], dict[str, Any]]:
    # AMQP has no place for credentials but the URL: `user`/`password` fill in the URLs that
    # carry no user info of their own.
    urls, options = common_arguments(urls, settings)
    if settings.user:
        auth = quote(settings.user, safe="")
        if settings.password:
            auth += ":" + quote(settings.password, safe="")
        filled = []
        for url in urls:
            parts = urlsplit(url)
            if parts.username is None:
                url = urlunsplit(parts._replace(netloc=f"{auth}@{parts.netloc}"))
            filled.append(url)
        urls = filled
    context = settings.ssl_context()
    if context is not None:
        options["ssl_context"] = context
    return urls, options


_TLS = frozenset({"tls_ca_file", "tls_cert_file", "tls_key_file"})

NATS = register(
    Backend(
        "NATS",
        ("nats", "tls"),
        "ari_proxy.bus._nats:NatsTransport",
        settings=frozenset({"user", "password", "token", "creds_file", "nkey_seed_file"}) | _TLS,
        arguments=_nats_arguments,
        # nats-py applies URL credentials only to the server whose URL holds them.
        shared_credentials=True,
    )
)
RABBITMQ = register(
    Backend(
        "RabbitMQ",
        ("amqp", "amqps"),
        "ari_proxy.bus._rabbitmq:RabbitTransport",
        settings=frozenset({"user", "password"}) | _TLS,
        arguments=_rabbitmq_arguments,
    )
)
