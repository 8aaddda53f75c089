"""The RabbitMQ topology of ari-proxy, sans I/O: exchanges, routes, queue shapes (docs/protocol.md,
"Subjects").

Everything a Go v5 peer relies on is fixed here, in one place, so the transport module only
performs what these values describe:

- four exchanges with constant names whatever the subject prefix (Go Go defect 36), all durable,
  not auto-deleted, not internal, no arguments; a peer declaring one differently is refused by
  the broker with PRECONDITION_FAILED;
- a subject maps to (exchange, routing key): requests to `ari.request`, events and dialog events
  to `ari.event`, pings to `ari.ping`, announcements to `ari.announce`, the routing key being
  the subject itself;
- queue names and arguments, identical to Go's where a queue is shared with Go peers
  (`ariproxy-<subject>`: durable, no arguments) and our own elsewhere.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from ..protocol import ProtocolError, new_id

__all__ = [
    "ANNOUNCE_EXCHANGE",
    "EVENT_EXCHANGE",
    "EXCHANGES",
    "MESSAGE_TTL_MS",
    "PING_EXCHANGE",
    "QUEUE_EXPIRES_MS",
    "REPLY_TO",
    "REQUEST_EXCHANGE",
    "ExchangeSpec",
    "QueueSpec",
    "Route",
    "SubjectClass",
    "announce_queue",
    "binding_key",
    "classify",
    "event_queue",
    "listen_group_queue",
    "ping_queue",
    "route",
    "serve_group_queue",
    "serve_private_queue",
    "topic_matches",
]

REQUEST_EXCHANGE = "ari.request"
EVENT_EXCHANGE = "ari.event"
PING_EXCHANGE = "ari.ping"
ANNOUNCE_EXCHANGE = "ari.announce"

REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's direct reply-to pseudo-queue: consumed with no_ack, named in `reply_to`."""

QUEUE_EXPIRES_MS = 30_000
"""`x-expires` of per-process queues, as Go sets it: the broker deletes the queue 30 s after its
last consumer left, so a crashed process leaves nothing behind for long."""

MESSAGE_TTL_MS = 30_000
"""`x-message-ttl` of event queues: an event nobody consumed within 30 s is stale."""


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """One exchange as every peer must declare it (durable, not auto-deleted, not internal,
    no arguments)."""

    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False


EXCHANGES: tuple[ExchangeSpec, ...] = (
    ExchangeSpec(REQUEST_EXCHANGE, "topic"),
    ExchangeSpec(EVENT_EXCHANGE, "topic"),
    ExchangeSpec(PING_EXCHANGE, "fanout"),
    ExchangeSpec(ANNOUNCE_EXCHANGE, "fanout"),
)
"""All four exchanges. We declare all of them on every connect: Go declares each only on its
consuming side, so on a fresh broker its first publish to an undeclared one kills its publishing
channel (Go defect 37); declaring them all first makes either side safe to start first."""


class SubjectClass(enum.StrEnum):
    """The first token after the prefix, which decides the exchange of ari-proxy subjects."""

    GET = "get"
    DATA = "data"
    COMMAND = "command"
    CREATE = "create"
    EVENT = "event"
    DIALOGEVENT = "dialogevent"
    PING = "ping"
    ANNOUNCE = "announce"


_EXCHANGE_OF: dict[SubjectClass, str] = {
    SubjectClass.GET: REQUEST_EXCHANGE,
    SubjectClass.DATA: REQUEST_EXCHANGE,
    SubjectClass.COMMAND: REQUEST_EXCHANGE,
    SubjectClass.CREATE: REQUEST_EXCHANGE,
    SubjectClass.EVENT: EVENT_EXCHANGE,
    SubjectClass.DIALOGEVENT: EVENT_EXCHANGE,
    SubjectClass.PING: PING_EXCHANGE,
    SubjectClass.ANNOUNCE: ANNOUNCE_EXCHANGE,
}


class Route(NamedTuple):
    """Where a message for a subject is published, or what a queue is bound with."""

    exchange: str
    routing_key: str


def classify(subject: str, prefix: str) -> SubjectClass | None:
    """The class of an ari-proxy subject (`ari.create.app` → CREATE), or None when `subject`
    is not `<prefix><class>` or `<prefix><class>.<more>`."""
    if not subject.startswith(prefix):
        return None
    head = subject[len(prefix) :].split(".", 1)[0]
    try:
        return SubjectClass(head)
    except ValueError:
        return None


def binding_key(subject: str) -> str:
    """A NATS-style subject as a RabbitMQ routing or binding key.

    `*` means one token on both. NATS's tail wildcard `>` means one or more tokens; RabbitMQ's
    `#` means zero or more, so `>` becomes `*.#`, which keeps the NATS meaning (`ari.event.>`
    does not match `ari.event` itself, as `ari.event.#` would). A `#` already in the subject
    (as `Subjects.event_subscription` writes it for RabbitMQ, like Go) is kept as it is.
    """
    return ".".join("*.#" if token == ">" else token for token in subject.split("."))


def route(subject: str, prefix: str, default: str) -> Route:
    """The exchange and routing (or binding) key for `subject`.

    An ari-proxy subject (`<prefix><class>...`) goes to its class's exchange, which is what Go
    peers publish to and bind: requests to `ari.request`, events and dialog events to
    `ari.event`, pings to `ari.ping`, announcements to `ari.announce`. Any other subject goes to
    `default`, the exchange of the caller's intent (`ari.request` for serve and request,
    `ari.event` for publish and subscribe). The key is the subject itself (see `binding_key`).
    """
    cls = classify(subject, prefix)
    exchange = _EXCHANGE_OF[cls] if cls is not None else default
    return Route(exchange, binding_key(subject))


def topic_matches(pattern: str, key: str) -> bool:
    """Whether the routing key `key` matches the topic binding `pattern` (`*` is one token,
    `#` zero or more), as the broker decides it; used to dispatch messages of one queue that is
    bound with several subjects."""
    pat = pattern.split(".")
    words = key.split(".")

    def match(i: int, j: int) -> bool:
        while i < len(pat):
            if pat[i] == "#":
                return any(match(i + 1, k) for k in range(j, len(words) + 1))
            if j >= len(words) or (pat[i] != "*" and pat[i] != words[j]):
                return False
            i += 1
            j += 1
        return j == len(words)

    return match(0, 0)


# What AMQP 0-9-1 allows in a queue name (pamqp refuses anything else before sending).
_QUEUE_NAME = re.compile(r"[a-zA-Z0-9\-_.:@#,/+ ]{0,255}")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """How to declare one queue. `name == ""` asks the broker for a name (`amq.gen-…`).

    Raises:
        ProtocolError: `name` is not a valid AMQP queue name (a subject or group with
            characters AMQP does not allow in a name).
    """

    name: str
    durable: bool
    exclusive: bool = False
    auto_delete: bool = False
    arguments: dict[str, int] = field(default_factory=dict)
    shared: bool = False
    """Other processes (possibly Go peers) use the queue too: never delete or unbind it."""

    def __post_init__(self) -> None:
        if not _QUEUE_NAME.fullmatch(self.name):
            raise ProtocolError(
                f"{self.name!r} cannot be a RabbitMQ queue name: at most 255 of "
                "a-z A-Z 0-9 - _ . : @ # , / + and space"
            )


def serve_private_queue() -> QueueSpec:
    """The one queue of a server process for its plain (not load-balanced) request subjects:
    `<ulid>-q`, shaped exactly like Go's (durable, `x-expires` 30 s)."""
    return QueueSpec(new_id("q"), durable=True, arguments={"x-expires": QUEUE_EXPIRES_MS})


def serve_group_queue(group: str, subject: str) -> QueueSpec:
    """The queue a group of servers shares for `subject` (competing consumers):
    `<group>-<subject>`, `ariproxy-ari.create...` for the create subjects.

    Durable with NO arguments, exactly as Go declares it: the broker refuses a re-declaration
    whose argument set differs (PRECONDITION_FAILED), so no TTL can be added here without
    breaking Go servers sharing it. Stale creates are prevented by the client instead, which
    gives each request a per-message `expiration` (Go defect 35).
    """
    return QueueSpec(f"{group}-{subject}", durable=True, shared=True)


def ping_queue(subject: str) -> QueueSpec:
    """A server's queue on the `ari.ping` fan-out: `<subject>-<ulid>-q` (`ari.ping-…-q`),
    shaped like Go's."""
    return QueueSpec(
        f"{subject}-{new_id('q')}", durable=True, arguments={"x-expires": QUEUE_EXPIRES_MS}
    )


def announce_queue(subject: str) -> QueueSpec:
    """A client's queue on the `ari.announce` fan-out: `<subject>-<ulid>-q`
    (`ari.announce-…-q`), shaped like Go's."""
    return QueueSpec(
        f"{subject}-{new_id('q')}", durable=True, arguments={"x-expires": QUEUE_EXPIRES_MS}
    )


def event_queue() -> QueueSpec:
    """The queue of one event subscription: broker-named, exclusive and auto-deleted, so it
    lives exactly as long as the subscription and its connection.

    Go names it after the application and makes it durable (Go defect 33: every subscription
    of an app then competes for one queue). Ours is private, so it shares nothing with Go.
    Broker-named, because a reconnect must not trip over the previous connection's exclusive
    queue of the same name (RESOURCE_LOCKED) while the broker has not yet noticed that
    connection is gone.
    """
    return QueueSpec(
        "",
        durable=False,
        exclusive=True,
        auto_delete=True,
        arguments={"x-message-ttl": MESSAGE_TTL_MS},
    )


def listen_group_queue(group: str, subject: str) -> QueueSpec:
    """The queue shared by the members of one group subscribed to `subject` (`listen()`):
    `ari-proxy-listen.<group>.<binding key>`, `*` written `+` (`ari.event.app.>` gives
    `ari-proxy-listen.app.ari.event.app.+.#`).

    Each event goes to exactly one member (competing consumers). The subject is part of the
    name because a group is a distribution set per subject, as a NATS queue group is: one queue
    for a group's several subjects would hand a member events of a subject it never asked for.
    Not Go's `ARIProxyStasisStartDistributorQueue`, which every application shares (weakness
    34). Non-durable and not auto-deleted (a member leaving must not delete it under the
    others), with `x-expires` so it disappears 30 s after the last member left, and
    `x-message-ttl` so a late joiner is not handed stale calls.
    """
    # `*` is not allowed in a queue name; `+` stands for it (as in MQTT).
    name = binding_key(subject).replace("*", "+")
    return QueueSpec(
        f"ari-proxy-listen.{group}.{name}",
        durable=False,
        arguments={"x-expires": QUEUE_EXPIRES_MS, "x-message-ttl": MESSAGE_TTL_MS},
        shared=True,
    )
