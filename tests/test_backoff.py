"""Every reconnect loop waits as docs/operations.md says: 0.1 s doubling to 0.5 s, jittered, with
the values written once (`ari_proxy._backoff`)."""

from __future__ import annotations

import inspect
from pathlib import Path

from ari_proxy._backoff import RETRY_INITIAL, RETRY_MAXIMUM, Backoff, worth_logging
from ari_proxy.bus import NatsTransport

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_say_what_the_code_does() -> None:
    text = " ".join((ROOT / "docs/operations.md").read_text().split())
    said = f"{RETRY_INITIAL:g} s doubling to {RETRY_MAXIMUM:g} s"
    assert text.count(said) >= 3, said  # ARI at startup, the ARI WebSocket, the bus


def test_every_link_uses_the_one_value() -> None:
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum) == (RETRY_INITIAL, RETRY_MAXIMUM)
    nats_default = inspect.signature(NatsTransport).parameters["reconnect_wait"].default
    assert nats_default == (RETRY_INITIAL, RETRY_MAXIMUM)
    for module in ("ari/_websocket.py", "bus/_rabbitmq.py", "bus/_rabbitmq_link.py"):
        source = (ROOT / "ari_proxy" / module).read_text()
        assert "maximum=10" not in source and "Backoff(initial=" not in source, module


def test_delays_grow_to_the_maximum_and_no_further() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(50)]
    assert all(RETRY_INITIAL <= d <= RETRY_MAXIMUM for d in delays)
    assert max(delays[10:]) > RETRY_MAXIMUM / 2  # it does reach the cap's range
    backoff.reset()
    assert backoff.next() == RETRY_INITIAL


def test_a_long_outage_is_logged_sparingly() -> None:
    logged = [n for n in range(1, 1001) if worth_logging(n)]
    powers = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert logged == sorted({*powers, *range(100, 1001, 100)})
