"""Helpers for the protocol tests: the recorded Go traffic in tests/vectors (see its README).

Tests ask for a `*_vector` argument and get parametrised over every matching record:
`request_vector`, `reply_vector`, `announce_vector`, `event_vector` (a `Vector`), and
`dialog_pair` (the event and one of its dialog copies, as a `(Vector, Vector)` tuple).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(os.environ["ARI_PROXY_VECTORS"])
VECTOR_FILES = {"nats": "go-v5-nats.jsonl", "rabbitmq": "go-v5-rabbitmq.jsonl"}


@dataclass(frozen=True)
class Vector:
    """One recorded bus message and the exact bytes Go put on the wire."""

    bus: str
    seq: int
    role: str
    subject: str
    body: Any
    wire: bytes
    for_seq: int | None = None

    @property
    def id(self) -> str:
        return f"{self.bus}-{self.seq}"


def _wire_bytes(record: dict[str, Any]) -> bytes:
    """The payload as sent: `raw` when recorded, the text of a non-JSON body, or else the
    compact re-serialisation of `body` (what the vectors README says `raw` departs from)."""
    if "raw" in record:
        return str(record["raw"]).encode()
    body = record["body"]
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@cache
def load_vectors(bus: str) -> tuple[Vector, ...]:
    """Every record of one bus's vector file, in bus order."""
    path = VECTORS_DIR / VECTOR_FILES[bus]
    vectors = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            vectors.append(
                Vector(
                    bus=bus,
                    seq=record["seq"],
                    role=record["role"],
                    subject=record["subject"],
                    body=record["body"],
                    wire=_wire_bytes(record),
                    for_seq=record.get("for_seq"),
                )
            )
    return tuple(vectors)


def all_vectors() -> tuple[Vector, ...]:
    return tuple(v for bus in VECTOR_FILES for v in load_vectors(bus))


def vectors_with_role(*roles: str) -> list[Vector]:
    return [v for v in all_vectors() if v.role in roles]


def dialog_pairs() -> list[tuple[Vector, Vector]]:
    """Each dialog copy with the event it copies: the last plain event before it on its bus."""
    pairs = []
    for bus in VECTOR_FILES:
        event: Vector | None = None
        for vector in load_vectors(bus):
            if vector.role == "event":
                event = vector
            elif vector.role == "dialogevent":
                assert event is not None, f"dialog copy {vector.id} before any event"
                pairs.append((event, vector))
    return pairs


PARAMETERS: dict[str, Callable[[], list[Vector]]] = {
    "request_vector": lambda: vectors_with_role("request", "ping"),
    "reply_vector": lambda: vectors_with_role("reply"),
    "announce_vector": lambda: vectors_with_role("announce"),
    "event_vector": lambda: vectors_with_role("event"),
}
