"""The handover tests' kit: the instance processes and callers of the test kit, and a summary."""

from __future__ import annotations

import statistics

from ari_proxy.testing import Callers, Fleet

__all__ = ["Callers", "Fleet", "summary"]


def summary(seconds: list[float]) -> str:
    """Median and worst, in milliseconds."""
    return (
        f"n={len(seconds)} median={statistics.median(seconds) * 1000:.0f} ms "
        f"worst={max(seconds) * 1000:.0f} ms"
    )
