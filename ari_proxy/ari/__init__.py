"""The native ARI client: all of ARI in Asterisk 22, typed, talking to one Asterisk directly.

`connect()` gives an `AriClient`, which implements the same interface as the proxy client;
`serve_outbound()` gives one that Asterisk dials (its outbound WebSocket). The parts below them
are public for the server and for tests: `HttpTransport` and `WebSocketRest` (REST over HTTP, or
over the events WebSocket), `EventStream` and `OutboundEventStream` (the events WebSocket, dialled
or accepted) and `Executor` (the request kinds run against Asterisk). The generated models are in
`ari_proxy.ari.models`.
"""

from ..api import Connecting
from ._client import AriClient, NativeBackend, connect, serve_outbound
from ._executor import Executor
from ._http import Deadlines, HttpTransport, RestTransport
from ._outbound import OutboundEventStream
from ._websocket import ConnectionState, EventSocket, EventStream
from ._websocket_rest import REST_TRANSPORTS, WebSocketRest, rest_over_websocket

__all__ = [
    "REST_TRANSPORTS",
    "AriClient",
    "Connecting",
    "ConnectionState",
    "Deadlines",
    "EventSocket",
    "EventStream",
    "Executor",
    "HttpTransport",
    "NativeBackend",
    "OutboundEventStream",
    "RestTransport",
    "WebSocketRest",
    "connect",
    "rest_over_websocket",
    "serve_outbound",
]
