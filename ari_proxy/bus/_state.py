"""`StateKeeper`: a transport's `state` and its `on_state` callbacks, shared by every backend."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._transport import BusState

__all__ = ["StateKeeper"]

logger = logging.getLogger(__name__)


class StateKeeper:
    """A transport's `state` and the `on_state` callbacks to call on every change."""

    def __init__(self) -> None:
        self.state = BusState.CONNECTING
        self._callbacks: list[Callable[[BusState], None]] = []

    def add(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every later change."""
        self._callbacks.append(callback)

    def set(self, state: BusState) -> None:
        """Move to `state` and tell the callbacks, unless already there."""
        if state is self.state:
            return
        self.state = state
        for callback in list(self._callbacks):
            try:
                callback(state)
            except Exception:
                # A broken observer must not break the transport's own bookkeeping.
                logger.exception("on_state callback %r failed", callback)
