"""Which requests a server starts: at most `proxy.max_inflight` at once, shared fairly between
the clients that send them.

A client is known by the stable part of its reply address (`client_of`): the reply subject
without its last token. On NATS that is the connection's request inbox (`_INBOX.<nuid>` of
nats-py and nats.go, `_INBOX.<scope>.<nuid>` of a scoped connection); on RabbitMQ the direct
reply-to address of the requester's channel (`amq.rabbitmq.reply-to.<channel>`: RabbitMQ
encodes the channel there, not the connection). A reply address with no stable part (Go's
gathers reply on a bare `<rid>-rp`) counts as one anonymous client shared by all of them.

The rule (docs/operations.md, "Limits under load"): a request starts when fewer than
`max_inflight` are executing and, if its client already has its share executing, only while
the server is not contended (fewer than half of `max_inflight` executing). The share is
`proxy.max_inflight_per_client` when set (then enforced at any load), else
`max(4, max_inflight // active)` but never more than `max_inflight - max_inflight // 8`, where
`active` counts the clients that sent a request within the last second or still have one
executing. So:

- a quiet server lets a client run as many requests as it likes (up to `max_inflight`, or the
  reserve below): shares cost nothing until slots run short;
- one busy client alone never holds the last eighth of the slots, so a client that shows up
  finds one at once; from then on the busy one's share is half, and the slots it frees go to
  the other;
- however many identities are active (a Go client on RabbitMQ opens a channel, hence a reply
  address, per request), each still gets 4 under contention.

Identities are not authenticated: a client that forges many reply addresses gets many shares,
as a client that opens many connections would.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from ._logging import RateLimiter

__all__ = ["MIN_SHARE", "Admission", "client_of"]

logger = logging.getLogger(__name__)

MIN_SHARE: Final = 4
"""Requests every client may have executing, however many clients are active."""

_MAX_IDENTITY = 128
_ANONYMOUS = ""


def client_of(reply: str) -> str:
    """The client a reply address belongs to: the address without its last token (at most
    128 characters), or `""` (anonymous) when it has no stable part (no reply, a bare
    `<rid>-rp`, an old-style `_INBOX.<id>` made per request)."""
    head, sep, _ = reply.rpartition(".")
    if not sep or head == "_INBOX":
        return _ANONYMOUS
    return head[:_MAX_IDENTITY]


class Admission:
    """Counts the requests executing, in all and per client, and admits new ones by the rule
    of the module docstring.

    Args:
        limit: requests executing at once at most (`proxy.max_inflight`).
        per_client: each client's share; 0: an equal share among the active clients.
        window: seconds a client counts as active after its last request.
        max_clients: clients remembered at most (the least recently seen is forgotten first).
        clock: monotonic seconds.

    Attributes:
        refused_busy: requests refused because `limit` were executing.
        refused_share: requests refused because their client had its share executing.
        forgotten: clients forgotten because `max_clients` were remembered (logged at
            WARNING, at most once per 10 s).
    """

    def __init__(
        self,
        limit: int,
        per_client: int = 0,
        *,
        window: float = 1.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.per_client = per_client
        self.window = window
        self.max_clients = max_clients
        self.refused_busy = 0
        self.refused_share = 0
        self.forgotten = 0
        self._limiter = RateLimiter(10.0)
        self._clock = clock
        self._total = 0
        self._inflight: dict[str, int] = {}  # only clients with requests executing
        self._seen: OrderedDict[str, float] = OrderedDict()  # least recently seen first

    @property
    def inflight(self) -> int:
        """Requests executing now."""
        return self._total

    @property
    def clients(self) -> int:
        """Clients counted as active now."""
        self._prune(self._clock())
        return len(self._seen)

    @property
    def contended(self) -> bool:
        """Whether half of the slots or more are taken (shares apply)."""
        return self._total >= self.limit // 2

    def share(self) -> int:
        """What each client may have executing when the server is contended."""
        if self.per_client:
            return self.per_client
        fair = max(MIN_SHARE, self.limit // max(1, self.clients))
        return max(1, min(fair, self.limit - self.limit // 8))

    def admit(self, client: str) -> str | None:
        """Start a request of `client` (call `release` when it ends): None when admitted,
        else why not (the text of the `busy` reply)."""
        now = self._clock()
        self._seen[client] = now
        self._seen.move_to_end(client)
        if len(self._seen) > self.max_clients:
            self._prune(now)  # idle clients first (uncontended, nothing else prunes them)
        if len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)
            self.forgotten += 1
            held = self._limiter.allow("clients")
            if held is not None:
                logger.warning(
                    "clients at their bound: forgot the least recently seen",
                    extra={"limit": self.max_clients, "suppressed": held},
                )
        if self._total >= self.limit:
            self.refused_busy += 1
            return f"server busy: {self.limit} requests in flight"
        running = self._inflight.get(client, 0)
        # Shares apply only when contended: the common case skips computing one.
        if (self.per_client or self.contended) and running >= (share := self.share()):
            self.refused_share += 1
            return (
                f"server busy: this client has {running} requests in flight, its share "
                f"({share}) of {self.limit} among {len(self._seen)} clients"
            )
        self._inflight[client] = running + 1
        self._total += 1
        return None

    def release(self, client: str) -> None:
        """A request of `client` that `admit` started has ended."""
        running = self._inflight.get(client, 0)
        if running <= 0:
            return
        self._total -= 1
        if running == 1:
            del self._inflight[client]
        else:
            self._inflight[client] = running - 1
        if client in self._seen:
            self._seen[client] = self._clock()
            self._seen.move_to_end(client)

    def _prune(self, now: float) -> None:
        """Forget the clients idle for longer than `window` (those with a request executing
        stay active: they go to the back with the current time)."""
        horizon = now - self.window
        seen = self._seen
        for _ in range(len(seen)):
            client, last = next(iter(seen.items()))
            if last >= horizon:
                return
            if client in self._inflight:
                seen[client] = now
                seen.move_to_end(client)
            else:
                del seen[client]
