"""Exponential backoff with full jitter, for every reconnect loop in the package.

`RETRY_INITIAL` and `RETRY_MAXIMUM` are the one place where the reconnect delays of every link
are written: the ARI WebSocket, the first connection to NATS and nats-py's reconnects, and
RabbitMQ (docs/operations.md, "Reconnection", says the same; a test holds them together).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RETRY_INITIAL", "RETRY_MAXIMUM", "Backoff", "worth_logging"]

RETRY_INITIAL = 0.1
"""Seconds before the first retry of a lost or refused connection."""

RETRY_MAXIMUM = 0.5
"""The longest wait between two attempts, in seconds (before jitter draws below it).

Half a second: a link is back within 0.5 s of its peer's return (Asterisk, NATS, RabbitMQ),
which is what a call in progress can afford. An attempt at a peer that is down costs a refused
TCP connection, so even a large fleet retrying at this pace is cheap for the peer; full jitter
still spreads a shared outage's reconnects over the half second. The log is spared by
`worth_logging()`, not by waiting longer.
"""

LOG_EVERY = 100
"""After the first attempts (1, 2, 4, 8, ...), every this many attempts is logged."""


@dataclass(slots=True)
class Backoff:
    """Delays for successive retries: `initial * factor**n`, capped at `maximum`, with jitter.

    Full jitter (a uniform draw between `initial` and the exponential value) spreads the
    reconnects of many clients after a shared outage. `reset()` after a success. The defaults
    are the package's reconnect delays, `RETRY_INITIAL` doubling to `RETRY_MAXIMUM`.

    ```python
    backoff = Backoff()
    while True:
        try:
            await connect()
            backoff.reset()
            break
        except OSError:
            await asyncio.sleep(backoff.next())
    ```
    """

    initial: float = RETRY_INITIAL
    maximum: float = RETRY_MAXIMUM
    factor: float = 2.0
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """The delay before the next attempt, in seconds."""
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return self._rng.uniform(self.initial, max(self.initial, ceiling))

    def reset(self) -> None:
        """Start over after a successful attempt."""
        self.attempts = 0


def worth_logging(attempt: int) -> bool:
    """Whether failed attempt number `attempt` (from 1) deserves a log line: the 1st, 2nd, 4th,
    8th, ... and then every `LOG_EVERY`th, so a long outage retried at a short pace is told
    about without flooding the log (each line says the attempt's number)."""
    return attempt & (attempt - 1) == 0 or attempt % LOG_EVERY == 0
