"""The one error the sans-I/O protocol layer raises (defined with the package's other errors)."""

from __future__ import annotations

from .._exceptions import ProtocolError

__all__ = ["ProtocolError"]
