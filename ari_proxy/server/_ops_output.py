"""How the operator commands print: event lines, tables, JSON, durations.

Pure functions of what was seen on the bus, so the commands stay about the bus and the tests
can read one place for the formats.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..events import event_keys, event_type, raw_event
from ..protocol import ProtocolError, parse_go_datetime
from ..spec import Message

__all__ = [
    "Answer",
    "event_json",
    "event_line",
    "format_age",
    "format_rtt",
    "node_rows",
    "nodes_json",
    "ping_json",
    "ping_rows",
    "table",
]

_json = msgspec.json.Encoder()

# Key kinds as an operator reads them (`liverecording` is a recording's key kind on the wire).
_KIND_SHOWN = {"liverecording": "recording", "devicestate": "device"}


@dataclass
class Answer:
    """What one server (node, application) said in its announcements during the window."""

    node: str
    application: str
    features: tuple[str, ...] = ()
    version: str = ""
    rtt: float | None = None
    """Seconds from the ping to its first announcement after it (None: it only announced
    before the ping, on its own timer)."""
    last_seen: float = field(default_factory=time.time)
    """Wall-clock time of its latest announcement."""

    @property
    def server(self) -> str:
        """`python` for ours (they announce `features`), `go` for a server that announces none
        (the Go ari-proxy's announcement has exactly `node` and `application`)."""
        return "python" if self.features else "go"

    @classmethod
    def parse(cls, data: bytes) -> Answer | None:
        """An announcement's fields, or None when it is not one (read as plain JSON: fields
        beyond Go's and ours, such as a `version`, are kept when a server sends them)."""
        try:
            body = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return None
        if not isinstance(body, dict):
            return None
        node, app = body.get("node"), body.get("application")
        if not (isinstance(node, str) and node and isinstance(app, str) and app):
            return None
        features = body.get("features")
        version = body.get("version")
        return cls(
            node=node,
            application=app,
            features=tuple(str(f) for f in features) if isinstance(features, list) else (),
            version=version if isinstance(version, str) else "",
        )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_rtt(seconds: float | None) -> str:
    """`1.9 ms`, or `-` when unknown."""
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def format_age(seen: float, now: float) -> str:
    """How long ago `seen` (wall clock) was: `0.4s ago`, `12s ago`, `3m ago`."""
    age = max(0.0, now - seen)
    if age < 10:
        return f"{age:.1f}s ago"
    if age < 120:
        return f"{age:.0f}s ago"
    return f"{age / 60:.0f}m ago"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def ping_rows(answers: Sequence[Answer]) -> list[list[str]]:
    """One row per server that answered: node, application, server, round trip."""
    return [[a.node, a.application, a.server, format_rtt(a.rtt)] for a in answers]


def ping_json(answers: Sequence[Answer]) -> str:
    """The answers as one JSON array."""
    return _json.encode(
        [
            {
                "node": a.node,
                "application": a.application,
                "server": a.server,
                "features": list(a.features),
                "rtt_ms": None if a.rtt is None else round(a.rtt * 1000, 3),
            }
            for a in answers
        ]
    ).decode()


_Group = tuple[str, str, str, tuple[str, ...]]  # node, server, version, features


def _groups(answers: Sequence[Answer]) -> list[tuple[_Group, list[Answer]]]:
    groups: dict[_Group, list[Answer]] = {}
    for a in answers:
        groups.setdefault((a.node, a.server, a.version, a.features), []).append(a)
    return sorted(groups.items())


def node_rows(answers: Sequence[Answer], now: float) -> list[list[str]]:
    """One row per node (and kind of server on it): node, applications, server, version,
    features, last seen."""
    return [
        [
            node,
            ",".join(sorted(a.application for a in group)),
            server,
            version or "-",
            ",".join(features) or "-",
            format_age(max(a.last_seen for a in group), now),
        ]
        for (node, server, version, features), group in _groups(answers)
    ]


def nodes_json(answers: Sequence[Answer]) -> str:
    """The nodes as one JSON array (`last_seen` in UTC, ISO 8601)."""
    return _json.encode(
        [
            {
                "node": node,
                "applications": sorted(a.application for a in group),
                "server": server,
                "version": version or None,
                "features": list(features),
                "last_seen": _iso(max(a.last_seen for a in group)),
            }
            for (node, server, version, features), group in _groups(answers)
        ]
    ).decode()


def _event_time(event: Message) -> str:
    stamp = getattr(event, "timestamp", None)
    when: datetime | None = None
    if isinstance(stamp, datetime):
        when = stamp
    elif isinstance(stamp, str) and stamp:
        try:
            when = parse_go_datetime(stamp, strict=False)
        except (ProtocolError, ValueError):
            when = None
    if when is None or when.year < 1971:  # absent, or Go's zero time
        when = datetime.now(UTC)
    return when.astimezone().strftime("%H:%M:%S.%f")[:-3]


def event_line(event: Message, app: str = "", node: str = "") -> str:
    """`HH:MM:SS.mmm  app  node  Type  channel=... bridge=...`: the event's own time (local),
    application and node (else `app` and `node`, from its subject), type, and the ids of the
    entities it concerns."""
    ids = " ".join(f"{_KIND_SHOWN.get(key.kind, key.kind)}={key.id}" for key in event_keys(event))
    shown_app = getattr(event, "application", "") or app or "-"
    shown_node = event.asterisk_id or node or "-"
    line = f"{_event_time(event)}  {shown_app}  {shown_node}  {event_type(event):<22}  {ids}"
    return line.rstrip()


def event_json(event: Message) -> str:
    """The event as it came (every field), as one compact JSON line."""
    body: dict[str, Any] = raw_event(event)
    return _json.encode(body).decode()
