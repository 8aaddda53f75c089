"""Exponential backoff with full jitter, for every reconnect loop in the package."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    """Delays for successive retries: `initial * factor**n`, capped at `maximum`, with jitter.

    Full jitter (a uniform draw between `initial` and the exponential value) spreads the
    reconnects of many clients after a shared outage. `reset()` after a success.

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

    initial: float = 0.1
    maximum: float = 10.0
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
