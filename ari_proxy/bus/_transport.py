"""The message-bus interface the server and the proxy client are written against.

It speaks in the intents of the ari-proxy protocol (serve requests, reply, publish an event,
request and gather replies, subscribe to events, ping and announce) rather than in raw subjects,
because NATS and RabbitMQ express the same intent differently (a NATS queue group is a shared
durable queue on RabbitMQ; a reply subject is a `reply_to` on the default exchange). Subjects are
always the NATS-style strings of docs/protocol.md, "Subjects" (`ari.command.app.node`,
`ari.event.app.>`), whatever the bus; each backend maps them to its broker (RabbitMQ binds `>` as
`*.#`), so neither the server nor the client needs to know which bus it is on.

Every backend reconnects by itself, forever, with backoff and jitter, and restores what was
subscribed; `state` and `on_state` tell the owner, and `gaps` counts interruptions.

What a valid subject is, and how a subscription subject matches, is part of this interface, so
every backend checks subjects with the same `check_subject` and the in-memory backend matches
them with `subject_matches`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol import ProtocolError

__all__ = [
    "MAX_GATHER_REPLIES",
    "BusMessage",
    "BusState",
    "BusSubscription",
    "Handler",
    "Transport",
    "check_subject",
    "subject_matches",
]

MAX_GATHER_REPLIES = 10_000
"""A gather never keeps more replies than this, whatever `enough` says."""

# NATS refuses whitespace and control characters anywhere in a subject; CR/LF would even let a
# caller inject protocol commands.
_BAD_SUBJECT_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")


MAX_SUBJECT = 2048
"""The longest subject published or subscribed to, in characters."""


def check_subject(subject: str, *, wildcards: bool) -> str:
    """Return `subject` if it is a valid NATS subject, else raise `ProtocolError`.

    A subject is dot-separated non-empty tokens without whitespace or control characters. With
    `wildcards` (subscriptions), a token may be `*`, and the last token may be `>`; without
    (publications), no token may contain `*` or `>`.
    """
    if not subject or _BAD_SUBJECT_CHAR.search(subject):
        raise ProtocolError(f"subject {subject[:80]!r} is empty or contains whitespace")
    if len(subject) > MAX_SUBJECT:
        raise ProtocolError(
            f"subject {subject[:80]!r}... is {len(subject)} characters long, more than "
            f"{MAX_SUBJECT} (NATS drops a connection whose protocol line passes 4 KiB)"
        )
    tokens = subject.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise ProtocolError(f"subject {subject!r} has an empty token")
        if "*" not in token and ">" not in token:
            continue
        if not wildcards:
            raise ProtocolError(f"cannot publish to the wildcard subject {subject!r}")
        if token == "*" or (token == ">" and index == len(tokens) - 1):
            continue
        raise ProtocolError(f"subject {subject!r} has a misplaced wildcard in {token!r}")
    return subject


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether `subject` matches the subscription `pattern` (`*` one token, `>` the rest)."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(wanted) == len(tokens)


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


class BusSubscription(Protocol):
    """A live subscription; the transport restores it after every reconnect."""

    @property
    def subject(self) -> str: ...

    async def unsubscribe(self) -> None:
        """Stop receiving; idempotent."""
        ...


class Transport(Protocol):
    """A connection to a message bus (NATS, RabbitMQ, ...), in ari-proxy's terms.

    Subjects are NATS-style whatever the bus (`*` one token, `>` one or more trailing tokens),
    checked by `check_subject`; a backend whose broker writes wildcards otherwise maps them
    itself (RabbitMQ binds `>` as `*.#`).
    """

    @property
    def state(self) -> BusState: ...

    @property
    def gaps(self) -> int:
        """Interruptions of an established link so far (messages may have been missed)."""
        ...

    @property
    def dropped(self) -> int:
        """Received messages dropped because their subscription had too many handlers running."""
        ...

    @property
    def max_payload(self) -> int | None:
        """The largest message body the bus takes, in bytes, or None when the transport knows
        no limit (yet). A larger message is refused with `TransportError`."""
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

    async def serve(self, subject: str, handler: Handler, *, group: str = "") -> BusSubscription:
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

    async def on_ping(self, subject: str, handler: Handler) -> BusSubscription:
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

    async def subscribe(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> BusSubscription:
        """Receive events matching `subject` (wildcards allowed). With `group`, each event goes
        to one member of the group (used by `listen()` to distribute calls)."""
        ...

    async def ping(self, subject: str, data: bytes) -> None:
        """Publish a ping (fan-out to every server)."""
        ...
