"""What the proxy server counts, readable at any time and logged at shutdown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Counters"]


@dataclass(slots=True)
class Counters:
    """Running totals since the server started.

    Attributes:
        requests: request messages received (all subjects, valid or not).
        replies: replies sent.
        ignored: requests addressed to another application or node (left to that server).
        errors: error replies by `code` (`bad_request`, `not_found`, `busy`, `ari_down`, ...).
        events_received: ARI WebSocket frames received.
        events_published: events published on `<prefix>event.<app>.<node>`.
        dialog_events_published: copies published on `<prefix>dialogevent.<dialog>`.
        events_dropped: events dropped because the publish queue was full (oldest first).
        events_failed: events (or copies) the bus refused to take.
        bad_frames: WebSocket frames that were not JSON event objects.
        announcements: announcements published.
        node_changes: times the Asterisk entity ID changed under the server.
    """

    requests: int = 0
    replies: int = 0
    ignored: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    events_received: int = 0
    events_published: int = 0
    dialog_events_published: int = 0
    events_dropped: int = 0
    events_failed: int = 0
    bad_frames: int = 0
    announcements: int = 0
    node_changes: int = 0

    def snapshot(self) -> dict[str, object]:
        """A plain copy, for logs and tests."""
        return {
            "requests": self.requests,
            "replies": self.replies,
            "ignored": self.ignored,
            "errors": dict(self.errors),
            "events_received": self.events_received,
            "events_published": self.events_published,
            "dialog_events_published": self.dialog_events_published,
            "events_dropped": self.events_dropped,
            "events_failed": self.events_failed,
            "bad_frames": self.bad_frames,
            "announcements": self.announcements,
            "node_changes": self.node_changes,
        }
