"""The message bus: one small transport interface and one module per backend.

`connect(url)` picks the backend from the URL scheme (`nats://`, `tls://` → NATS; `amqp://`,
`amqps://` → RabbitMQ). `MemoryBroker` and `MemoryTransport` give the same semantics without a
broker, for tests.
"""

from __future__ import annotations

from .._redact import redact_url
from ._memory import MemoryBroker, MemoryTransport
from ._nats import NatsTransport
from ._transport import BusMessage, BusState, Handler, Subscription, Transport
from ._url import connect

__all__ = [
    "BusMessage",
    "BusState",
    "Handler",
    "MemoryBroker",
    "MemoryTransport",
    "NatsTransport",
    "Subscription",
    "Transport",
    "connect",
    "redact_url",
]
