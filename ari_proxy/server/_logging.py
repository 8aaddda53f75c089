"""Structured logs for the `ari-proxy` command, rate limiting for noisy warnings, and the
periodic `stats` line.

`configure_logging` is called only by the CLI entry point: the library never configures
logging. Each record becomes one JSON object per line: `ts`, `level`, `logger`, `msg`, then the
fields passed with `extra={...}` (`kind`, `subject`, `app`, `node`, `error`, ...). Whatever a
value holds (a request's kind or ID may carry line breaks or other control characters), JSON
escapes it, so one record is always one line.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import msgspec

__all__ = ["JsonFormatter", "RateLimiter", "StatsLog", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_encoder = msgspec.json.Encoder()


def _fallback(value: object) -> object:
    return str(value)


_lenient = msgspec.json.Encoder(enc_hook=_fallback)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return _encoder.encode(entry).decode()
        except (TypeError, msgspec.EncodeError):
            return _lenient.encode(entry).decode()


def configure_logging(*, verbose: bool = False, stream: IO[str] | None = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines; DEBUG when `verbose`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Third-party libraries are chatty at DEBUG; keep them at INFO even in verbose mode.
    for name in ("asyncio", "nats", "aio_pika", "aiormq", "aiohttp"):
        logging.getLogger(name).setLevel(logging.INFO)
    # aiormq logs each lost connection and failed attempt at ERROR, with a traceback; our
    # RabbitMQ link says the same at WARNING, worded for operators, and a broker restart is no
    # error of the server's: error-level lines stay for what needs a person.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)


class RateLimiter:
    """Lets one message per `interval` seconds through per topic, counting the rest.

    ```python
    limiter = RateLimiter(10.0)
    if (held := limiter.allow("bad-request")) is not None:
        logger.warning("bad request (%d more suppressed)", held)
    ```
    """

    OVERFLOW = "(other topics)"
    """Where topics go once `max_topics` are tracked (topics may come from requests)."""

    def __init__(self, interval: float = 10.0, *, max_topics: int = 1024) -> None:
        self.interval = interval
        self.max_topics = max_topics
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._pruned_at = float("-inf")

    def allow(self, topic: str) -> int | None:
        """The number of messages held back since the last one, if this one may be logged;
        None if it must be dropped."""
        now = time.monotonic()
        if topic not in self._next and len(self._next) >= self.max_topics:
            # Forget the topics that are quiet (nothing held, interval over), at most once a
            # second; while none is, a new topic shares one with the other newcomers.
            if now >= self._pruned_at + 1.0:
                self._pruned_at = now
                quiet = [t for t, due in self._next.items() if due <= now and t not in self._held]
                for old in quiet:
                    del self._next[old]
            if len(self._next) >= self.max_topics:
                topic = self.OVERFLOW
        if now < self._next.get(topic, 0.0):
            self._held[topic] = self._held.get(topic, 0) + 1
            return None
        self._next[topic] = now + self.interval
        return self._held.pop(topic, 0)


_RATED = (
    "requests",
    "replies",
    "events_received",
    "events_published",
    "dialog_events_published",
    "events_dropped",
    "events_failed",
)
"""Counters of the `stats` line that also get a per-second rate since the previous line."""


class StatsLog:
    """Logs the server's counters as one `stats` line every `interval` seconds.

    ```json
    {"ts":"...","level":"info","logger":"ari_proxy.server.stats","msg":"stats",
     "stats":{"requests":1200,...,"ari_connected":true,"bus_state":"connected"},
     "rates":{"requests":20.0,...},"interval_s":60.0}
    ```

    `rates` are per second since the previous line (since the start for the first one).

    Args:
        stats: what to log (`Server.stats`).
        interval: seconds between lines.
    """

    def __init__(self, stats: Callable[[], Mapping[str, object]], interval: float) -> None:
        self.stats = stats
        self.interval = interval
        self.logger = logging.getLogger("ari_proxy.server.stats")
        self._task: asyncio.Task[None] | None = None
        self._previous: tuple[float, Mapping[str, object]] | None = None

    def start(self) -> None:
        """Start logging (the first line after one interval)."""
        if self._task is None:
            self._previous = (time.monotonic(), self.stats())
            self._task = asyncio.get_running_loop().create_task(self._run(), name="stats log")

    async def stop(self) -> None:
        """Stop logging."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.log()

    def log(self) -> None:
        """Log one `stats` line now."""
        now, stats = time.monotonic(), self.stats()
        rates: dict[str, float] = {}
        if self._previous is not None:
            then, before = self._previous
            elapsed = max(now - then, 1e-9)
            for name in _RATED:
                new, old = stats.get(name), before.get(name, 0)
                if isinstance(new, int) and isinstance(old, int):
                    rates[name] = round((new - old) / elapsed, 3)
        self._previous = (now, stats)
        self.logger.info(
            "stats", extra={"stats": dict(stats), "rates": rates, "interval_s": self.interval}
        )
