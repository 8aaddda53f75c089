"""The native ARI client: all of ARI in Asterisk 22, typed, talking to one Asterisk directly.

`connect()` gives an `AriClient`, which implements the same interface as the proxy client. The
parts below it are public for the server and for tests: `HttpTransport` (REST), `EventStream`
(the events WebSocket) and `Executor` (the request kinds run against Asterisk). The generated
models are in `ari_proxy.ari.models`.
"""

from ..api import Connecting
from ._client import AriClient, NativeBackend, connect
from ._executor import Executor
from ._http import HttpTransport
from ._websocket import ConnectionState, EventStream
from ._websocket_rest import WebSocketRest

__all__ = [
    "AriClient",
    "Connecting",
    "ConnectionState",
    "EventStream",
    "Executor",
    "HttpTransport",
    "NativeBackend",
    "WebSocketRest",
    "connect",
]
