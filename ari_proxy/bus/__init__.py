"""The message bus: one small transport interface and one module per backend.

`connect(url)` picks the backend from the URL scheme through the registry (`_registry`):
`nats://`, `tls://` → NATS; `amqp://`, `amqps://` → RabbitMQ; `register(Backend(...))` adds
one. `MemoryBroker` and `MemoryTransport` give the same semantics without a broker, for tests.
"""

from __future__ import annotations

from .._redact import redact_url
from ._memory import MemoryBroker, MemoryTransport
from ._nats import NatsTransport
from ._registry import (
    Backend,
    BusSettings,
    backend_for,
    backends,
    connect,
    connect_within,
    describe_mix,
    expected_schemes,
    find_backend,
    lift_credentials,
    register,
    unregister,
    url_scheme,
)
from ._transport import BusMessage, BusState, BusSubscription, Handler, Transport

__all__ = [
    "Backend",
    "BusMessage",
    "BusSettings",
    "BusState",
    "BusSubscription",
    "Handler",
    "MemoryBroker",
    "MemoryTransport",
    "NatsTransport",
    "Transport",
    "backend_for",
    "backends",
    "connect",
    "connect_within",
    "describe_mix",
    "expected_schemes",
    "find_backend",
    "lift_credentials",
    "redact_url",
    "register",
    "unregister",
    "url_scheme",
]
