"""The native ARI client: all of ARI in Asterisk 22, typed, talking to one Asterisk directly.

The names below load on first use, so that the generated models (`ari_proxy.ari.models`, which
every part of the package reads) can be imported without loading the client itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api._client import Connecting
    from ._client import AriClient, NativeBackend, connect
    from ._executor import Executor
    from ._http import HttpTransport
    from ._websocket import ConnectionState, EventStream

__all__ = [
    "AriClient",
    "Connecting",
    "ConnectionState",
    "EventStream",
    "Executor",
    "HttpTransport",
    "NativeBackend",
    "connect",
]

_WHERE = {
    "AriClient": "._client",
    "Connecting": "..api._client",
    "ConnectionState": "._websocket",
    "EventStream": "._websocket",
    "Executor": "._executor",
    "HttpTransport": "._http",
    "NativeBackend": "._client",
    "connect": "._client",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
