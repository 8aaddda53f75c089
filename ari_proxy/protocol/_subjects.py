"""Bus subjects and routing keys (docs/protocol.md, "Subjects").

Apps, node IDs and dialog IDs are used raw as subject tokens, so they are checked here: Go does
not check them, and a token with a `.` or a wildcard character would silently route elsewhere.
A dialog ID is one token, or two, `<app>.<id>`: our clients name their dialogs so, and then a
dialog's copies go to `<prefix>dialogevent.<app>.<id>`, which bus permissions can keep to the
application (docs/security.md); Go servers publish them there too, as they use the ID raw.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ._errors import ProtocolError
from ._key import Key

__all__ = [
    "MAX_TOKEN",
    "BusFlavour",
    "RequestClass",
    "Subjects",
    "check_dialog",
    "check_token",
    "scoped_dialog",
    "valid_dialog",
    "valid_token",
]

# Dots separate tokens, `*`, `>` and `#` are wildcards on NATS or RabbitMQ, and whitespace or
# control characters are refused by NATS.
_BAD_TOKEN_CHAR = re.compile(r"[.*>#\s\x00-\x1f\x7f-\x9f]")


MAX_TOKEN = 255
"""The longest subject token, in characters: NATS refuses a protocol line over 4 KiB, and drops
the connection that sent it (application, node and dialog names are tokens)."""


def valid_token(token: str) -> bool:
    """Whether `token` can be one subject token: 1 to `MAX_TOKEN` characters, no `.`, `*`,
    `>`, `#`, whitespace or control characters. A node ID such as `02:fc:00:00:00:01` is
    valid."""
    return 0 < len(token) <= MAX_TOKEN and _BAD_TOKEN_CHAR.search(token) is None


def check_token(token: str, what: str) -> str:
    """Return `token` if `valid_token` accepts it; otherwise raise `ProtocolError` naming `what`."""
    if not valid_token(token):
        raise ProtocolError(
            f"{what} {token[:80]!r}{'...' if len(token) > 80 else ''} cannot be a subject "
            f"token: it must be 1 to {MAX_TOKEN} characters, without '.', '*', '>', '#', "
            "whitespace or control characters"
        )
    return token


def valid_dialog(dialog: str) -> bool:
    """Whether `dialog` can name a dialog: one valid token, or two, `<app>.<id>`."""
    head, dot, tail = dialog.partition(".")
    return valid_token(head) and (not dot or valid_token(tail))


def check_dialog(dialog: str) -> str:
    """Return `dialog` if `valid_dialog` accepts it; otherwise raise `ProtocolError`."""
    if not valid_dialog(dialog):
        raise ProtocolError(
            f"dialog {dialog[:80]!r}{'...' if len(dialog) > 80 else ''} cannot name a dialog: "
            f"it must be one subject token, or two (`<app>.<id>`), each of 1 to {MAX_TOKEN} "
            "characters, without '*', '>', '#', whitespace or control characters"
        )
    return dialog


def scoped_dialog(app: str, ident: str) -> str:
    """The dialog ID `<app>.<ident>`, whose copies permissions can keep to `app`."""
    return f"{check_token(app, 'application')}.{check_token(ident, 'dialog')}"


class RequestClass(enum.StrEnum):
    """The subject class of a request; it decides which servers receive it (docs/protocol.md,
    "Subjects").

    The Go server ignores the class when it dispatches; `CREATE` subscriptions are the only
    load-balanced ones (one server of the queue group gets each message).
    """

    GET = "get"
    DATA = "data"
    COMMAND = "command"
    CREATE = "create"


class BusFlavour(enum.StrEnum):
    """The message bus, which decides the multi-token wildcard of subscriptions (docs/protocol.md,
    "Subjects").

    ari-proxy's own transports all take NATS-style subjects and map them to their broker (the
    RabbitMQ transport binds `>` as `*.#`, which keeps the NATS meaning), so subscriptions made
    through them are `NATS` whatever the bus; `RABBITMQ` is what Go's client binds on RabbitMQ
    (`#`, zero or more tokens).
    """

    NATS = "nats"
    RABBITMQ = "rabbitmq"

    @property
    def tail_wildcard(self) -> str:
        """The wildcard matching one or more trailing tokens: `>` on NATS, `#` on RabbitMQ."""
        return ">" if self is BusFlavour.NATS else "#"


@dataclass(frozen=True, slots=True)
class Subjects:
    """The subject builder for one prefix (default `ari.`; the prefix must end with `.`).

    Every method checks the app, node and dialog tokens it is given and raises
    `ProtocolError` for one that `valid_token` refuses.
    """

    prefix: str = "ari."

    def __post_init__(self) -> None:
        if not self.prefix.endswith("."):
            raise ProtocolError(f"subject prefix {self.prefix!r} must end with '.'")
        for token in self.prefix[:-1].split("."):
            check_token(token, "subject prefix token")

    def request(self, cls: RequestClass | str, app: str = "", node: str = "") -> str:
        """The subject of a request: `<prefix><class>[.<app>[.<node>]]`.

        As in Go's `Subject()`, a node without an app is dropped, giving `<prefix><class>`.
        """
        subject = self.prefix + RequestClass(cls).value
        if not app:
            return subject
        subject += "." + check_token(app, "application")
        if node:
            subject += "." + check_token(node, "node")
        return subject

    def event(self, app: str, node: str) -> str:
        """The subject a server publishes its events on: `<prefix>event.<app>.<node>`."""
        return f"{self.prefix}event.{check_token(app, 'application')}.{check_token(node, 'node')}"

    def listen(self, app: str, node: str = "") -> str:
        """Where our servers also publish StasisStart: `<prefix>listen.<app>.<node>`, or with no
        node the subscription subject `<prefix>listen.<app>.*` (an extension; Go has none)."""
        return f"{self.prefix}listen.{app}.{node or '*'}"

    def dialog_event(self, dialog: str) -> str:
        """The subject of an event's dialog copy: `<prefix>dialogevent.<dialog>`."""
        return f"{self.prefix}dialogevent.{check_dialog(dialog)}"

    def presence(self, role: str, app: str = "") -> str:
        """Where peers of ours say they are there: `<prefix>presence.<role>.<app>`, or with no
        app the subscription subject `<prefix>presence.<role>.*` (an extension; Go has none)."""
        app = check_token(app, "application") if app else "*"
        return f"{self.prefix}presence.{check_token(role, 'presence role')}.{app}"

    @property
    def ping(self) -> str:
        """The subject clients ping servers on: `<prefix>ping`."""
        return self.prefix + "ping"

    @property
    def announce(self) -> str:
        """The subject servers announce themselves on: `<prefix>announce`."""
        return self.prefix + "announce"

    def event_subscription(self, key: Key | None, bus: BusFlavour | str = BusFlavour.NATS) -> str:
        """The subject a client subscribes to for events matching `key` (Go's `subjectFromKey`).

        A dialog wins; otherwise the key's app and node narrow `<prefix>event.>` (or `.#` for
        `BusFlavour.RABBITMQ`, as Go's client binds). The default is what every transport of
        `ari_proxy.bus` takes, whatever its bus.
        """
        tail = BusFlavour(bus).tail_wildcard
        if key is not None and key.dialog:
            return self.dialog_event(key.dialog)
        if key is None or not key.app:
            return f"{self.prefix}event.{tail}"
        if not key.node:
            return f"{self.prefix}event.{check_token(key.app, 'application')}.{tail}"
        return self.event(key.app, key.node)

    def listen_subscription(self, app: str, bus: BusFlavour | str = BusFlavour.NATS) -> str:
        """The subject `client.Listen` subscribes to: every event of `app` on any node."""
        tail = BusFlavour(bus).tail_wildcard
        return f"{self.prefix}event.{check_token(app, 'application')}.{tail}"

    def server_subscriptions(self, app: str, node: str) -> tuple[tuple[RequestClass, str], ...]:
        """The 12 request subjects a server for (app, node) subscribes to, with their class.

        For each class in the order get, data, command, create: `<prefix><class>`,
        `<prefix><class>.<app>` and `<prefix><class>.<app>.<node>`. The three `CREATE`
        subjects are the ones to join with the shared queue group.
        """
        check_token(app, "application")
        check_token(node, "node")
        return tuple(
            (cls, subject)
            for cls in RequestClass
            for subject in (self.request(cls), self.request(cls, app), self.request(cls, app, node))
        )
