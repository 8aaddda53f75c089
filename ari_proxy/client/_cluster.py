"""The cluster map: which proxies (Asterisk node, application) are alive, from their announcements.

The client pings at start and periodically; every proxy answers with an announcement. A proxy
not heard from for `max_age` seconds is forgotten (Go keeps counting it for 5 minutes, so its
gathers wait the whole window), and one of ours that says it is leaving is forgotten at once.
Gathers use the map to stop as soon as every live proxy answered. An announcement with a new
epoch for a known proxy means its process was replaced: `restarted`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Cluster", "Node"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Node:
    """One proxy: the Asterisk entity ID it serves and the application it serves it for."""

    node: str
    application: str
    last_seen: float
    """`time.monotonic()` of its latest announcement."""
    features: frozenset[str] = frozenset()
    """What the proxy offers beyond Go's protocol (`listen`); empty for a Go server."""


NodeCallback = Callable[[str, Node], None]
"""Called with `"joined"`, `"left"` or `"restarted"` and the node."""


class Cluster:
    """Live proxies, by (node, application), kept fresh by announcements."""

    def __init__(
        self, *, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self._clock = clock
        self._members: dict[tuple[str, str], float] = {}
        self._features: dict[tuple[str, str], frozenset[str]] = {}
        self._epochs: dict[tuple[str, str], str] = {}
        self._callbacks: list[NodeCallback] = []

    def on_change(self, callback: NodeCallback) -> None:
        """Call `callback("joined" | "left" | "restarted", node)` when a proxy appears, is
        forgotten, or announces a new epoch."""
        self._callbacks.append(callback)

    def _notify(self, change: str, node: Node) -> None:
        for callback in list(self._callbacks):
            try:
                callback(change, node)
            except Exception:
                logger.exception("cluster callback failed")

    def seen(
        self,
        node: str,
        application: str,
        features: frozenset[str] = frozenset(),
        epoch: str = "",
    ) -> None:
        """Record an announcement."""
        if not node or not application:
            return
        now = self._clock()
        key = (node, application)
        joined = key not in self._members
        previous = self._epochs.get(key, "")
        self._members[key] = now
        self._features[key] = features
        if epoch:
            self._epochs[key] = epoch
        if joined:
            logger.debug("proxy joined: node %s application %s", node, application)
            self._notify("joined", Node(node, application, now, features))
        elif epoch and previous and epoch != previous:
            logger.debug("proxy restarted: node %s application %s", node, application)
            self._notify("restarted", Node(node, application, now, features))

    def leave(self, node: str, application: str, epoch: str = "") -> None:
        """A proxy said it is stopping: forget it now (unless it already restarted with a new
        epoch)."""
        key = (node, application)
        if key not in self._members or (epoch and self._epochs.get(key, epoch) != epoch):
            return
        seen = self._members.pop(key)
        self._epochs.pop(key, None)
        self._notify("left", Node(node, application, seen, self._features.pop(key, frozenset())))

    def prune(self) -> list[Node]:
        """Forget proxies silent for longer than `max_age`; return them."""
        limit = self._clock() - self.max_age
        gone = [
            Node(n, a, t, self._features.get((n, a), frozenset()))
            for (n, a), t in self._members.items()
            if t < limit
        ]
        for member in gone:
            del self._members[(member.node, member.application)]
            self._features.pop((member.node, member.application), None)
            self._epochs.pop((member.node, member.application), None)
            logger.debug(
                "proxy silent for %.0fs: node %s", self._clock() - member.last_seen, member.node
            )
            self._notify("left", member)
        return gone

    def forget_node(self, node: str) -> None:
        """Drop every entry of `node` (it said it is gone, or requests to it fail)."""
        for key in [k for k in self._members if k[0] == node]:
            seen = self._members.pop(key)
            self._epochs.pop(key, None)
            self._notify("left", Node(key[0], key[1], seen, self._features.pop(key, frozenset())))

    def nodes(self, application: str = "", node: str = "") -> list[Node]:
        """Live proxies, optionally of one application and/or node."""
        limit = self._clock() - self.max_age
        return [
            Node(n, a, t, self._features.get((n, a), frozenset()))
            for (n, a), t in sorted(self._members.items())
            if t >= limit and (not application or a == application) and (not node or n == node)
        ]

    def expected(self, application: str = "", node: str = "") -> int:
        """How many proxies a broadcast for (application, node) should hear from."""
        return len(self.nodes(application, node))
