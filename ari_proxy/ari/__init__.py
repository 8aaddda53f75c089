"""The native ARI client: all of ARI in Asterisk 22, typed, talking to one Asterisk directly."""

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
