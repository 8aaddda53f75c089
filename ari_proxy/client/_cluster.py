"""The cluster map: which proxies (Asterisk node, application) are alive, from their announcements.

The client pings at start and periodically; every proxy answers with an announcement. A proxy
not heard from for `max_age` seconds is forgotten (Go keeps counting it for 5 minutes, so its
gathers wait the whole window). Gathers use the map to stop as soon as every live proxy answered.
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
"""Called with `"joined"` or `"left"` and the node."""


class Cluster:
    """Live proxies, by (node, application), kept fresh by announcements."""

    def __init__(
        self, *, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self._clock = clock
        self._members: dict[tuple[str, str], float] = {}
        self._features: dict[tuple[str, str], frozenset[str]] = {}
        self._callbacks: list[NodeCallback] = []

    def on_change(self, callback: NodeCallback) -> None:
        """Call `callback("joined" | "left", node)` when a proxy appears or is forgotten."""
        self._callbacks.append(callback)

    def _notify(self, change: str, node: Node) -> None:
        for callback in list(self._callbacks):
            try:
                callback(change, node)
            except Exception:
                logger.exception("cluster callback failed")

    def seen(self, node: str, application: str, features: frozenset[str] = frozenset()) -> None:
        """Record an announcement."""
        if not node or not application:
            return
        now = self._clock()
        key = (node, application)
        joined = key not in self._members
        self._members[key] = now
        self._features[key] = features
        if joined:
            logger.info("proxy joined: node %s application %s", node, application)
            self._notify("joined", Node(node, application, now, features))

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
            logger.warning(
                "proxy left: node %s application %s (silent %.0fs)",
                member.node,
                member.application,
                self._clock() - member.last_seen,
            )
            self._notify("left", member)
        return gone

    def forget_node(self, node: str) -> None:
        """Drop every entry of `node` (it said it is gone, or requests to it fail)."""
        for key in [k for k in self._members if k[0] == node]:
            seen = self._members.pop(key)
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
