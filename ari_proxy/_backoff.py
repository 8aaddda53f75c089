"""Exponential backoff with full jitter, for every reconnect loop in the package.

`RETRY_INITIAL` and `RETRY_MAXIMUM` are the one place where the reconnect delays of every link
are written: the ARI WebSocket, the first connection to NATS and nats-py's reconnects, and
RabbitMQ (docs/operations.md, "Reconnection", says the same; a test holds them together).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RETRY_INITIAL", "RETRY_MAXIMUM", "Backoff"]

RETRY_INITIAL = 0.1
"""Seconds before the first retry of a lost or refused connection."""

RETRY_MAXIMUM = 5.0
"""The longest wait between two attempts, in seconds (before jitter draws below it).

Five seconds, as the docs have always said: after a broker or Asterisk restart every link is
back within about 5 s, and full jitter still spreads the clients of a shared outage over that
window (their mean wait at the cap is about 2.5 s, close to nats.go's fixed 2 s).
"""


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
