"""The message-bus interface the server and the proxy client are written against.

It speaks in the intents of the ari-proxy protocol (serve requests, reply, publish an event,
request and gather replies, subscribe to events, ping and announce) rather than in raw subjects,
because NATS and RabbitMQ express the same intent differently (a NATS queue group is a shared
durable queue on RabbitMQ; a reply subject is a `reply_to` on the default exchange). Subjects are
always the NATS-style strings of PROTOCOL.md §1 (`ari.command.app.node`, `ari.event.app.>`); each
backend maps them (and `>` to `#` on RabbitMQ).

Every backend reconnects by itself, forever, with backoff and jitter, and restores what was
subscribed; `state` and `on_state` tell the owner, and `gaps` counts interruptions.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "BusMessage",
    "BusState",
    "Handler",
    "Subscription",
    "Transport",
]


class BusState(enum.Enum):
    """Where the link to the broker is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One received message.

    Attributes:
        subject: the subject (NATS) or routing key (RabbitMQ) it was published on.
        data: the body.
        reply: where to send the reply (NATS reply subject, AMQP `reply_to`), or "".
        correlation_id: AMQP correlation id to echo in the reply (RabbitMQ only), or "".
    """

    subject: str
    data: bytes
    reply: str = ""
    correlation_id: str = ""


Handler = Callable[[BusMessage], Awaitable[None] | None]
"""Called for each received message. A coroutine is run as a task; a plain function inline."""


class Subscription(Protocol):
    """A live subscription; the transport restores it after every reconnect."""

    @property
    def subject(self) -> str: ...

    async def unsubscribe(self) -> None:
        """Stop receiving; idempotent."""
        ...


class Transport(Protocol):
    """A connection to NATS or RabbitMQ, in ari-proxy's terms."""

    @property
    def state(self) -> BusState: ...

    @property
    def flavour(self) -> str:
        """`nats` or `rabbitmq` (decides the tail wildcard: `>` or `#`)."""
        ...

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every state change (after a reconnect: CONNECTED again)."""
        ...

    async def connect(self) -> None:
        """Connect (retrying until it succeeds or `close()` is called)."""
        ...

    async def close(self) -> None:
        """Drain and close; pending requests fail with `ClientClosedError`."""
        ...

    # --- server side -----------------------------------------------------------------------

    async def serve(self, subject: str, handler: Handler, *, group: str = "") -> Subscription:
        """Receive requests on `subject`. With `group`, each message goes to one member of the
        group (NATS queue group; RabbitMQ shared queue `ariproxy-<subject>`); otherwise to every
        subscriber."""
        ...

    async def reply(self, message: BusMessage, data: bytes) -> None:
        """Answer a request received through `serve` (no-op when it has no reply address)."""
        ...

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish an event (`ari.event...`, `ari.dialogevent...`) or an announcement."""
        ...

    async def on_ping(self, subject: str, handler: Handler) -> Subscription:
        """Receive pings (fan-out to every server)."""
        ...

    # --- client side -----------------------------------------------------------------------

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:
        """Send a request and return the first reply.

        Raises:
            RequestTimeout: no reply within `timeout`.
            NoProxyError: nobody serves `subject` (NATS "no responders"), when the backend can tell.
        """
        ...

    async def gather(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        """Send a request that several servers answer; collect replies until `enough(replies)`
        is true or `timeout` passes, and return them (possibly none)."""
        ...

    async def subscribe(self, subject: str, handler: Handler, *, group: str = "") -> Subscription:
        """Receive events matching `subject` (wildcards allowed). With `group`, each event goes
        to one member of the group (used by `listen()` to distribute calls)."""
        ...

    async def ping(self, subject: str, data: bytes) -> None:
        """Publish a ping (fan-out to every server)."""
        ...
