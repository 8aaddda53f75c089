"""Structured logs for the `ari-proxy` command, and rate limiting for noisy warnings.

`configure_logging` is called only by the CLI entry point: the library never configures
logging. Each record becomes one JSON object per line: `ts`, `level`, `logger`, `msg`, then the
fields passed with `extra={...}` (`kind`, `subject`, `app`, `node`, `error`, ...).
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from typing import IO, Any

import msgspec

__all__ = ["JsonFormatter", "RateLimiter", "configure_logging"]

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


class RateLimiter:
    """Lets one message per `interval` seconds through per topic, counting the rest.

    ```python
    limiter = RateLimiter(10.0)
    if (held := limiter.allow("bad-request")) is not None:
        logger.warning("bad request (%d more suppressed)", held)
    ```
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, topic: str) -> int | None:
        """The number of messages held back since the last one, if this one may be logged;
        None if it must be dropped."""
        now = time.monotonic()
        if now < self._next.get(topic, 0.0):
            self._held[topic] = self._held.get(topic, 0) + 1
            return None
        self._next[topic] = now + self.interval
        return self._held.pop(topic, 0)
