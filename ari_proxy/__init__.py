"""ari-proxy: scale Asterisk servers and ARI applications independently over NATS or RabbitMQ.

`connect()` reaches ARI directly (an `http://` URL) or through ari-proxy servers on a bus
(`nats://`, `amqp://`); both give a `Client` with the same interface. The native client is in
`ari_proxy.ari`, the proxy client in `ari_proxy.client`, the server in `ari_proxy.server`.
"""

from ._connect import connect
from ._exceptions import (
    AriError,
    AriProxyError,
    BadRequestError,
    ClientClosedError,
    ClosedError,
    ConflictError,
    ConnectError,
    ConnectionDownError,
    ForbiddenError,
    InternalServerError,
    InvalidRequestError,
    NoProxyError,
    NotFoundError,
    ProtocolError,
    RequestTimeout,
    ServiceUnavailableError,
    SubscriptionOverflowError,
    TooLargeError,
    TransportError,
    UnknownKindError,
    UnprocessableEntityError,
)
from .api import (
    BridgeHandle,
    ChannelHandle,
    Client,
    ConnectionGap,
    Handle,
    LiveRecordingHandle,
    Overflow,
    PlaybackHandle,
    Staged,
    StoredRecordingHandle,
    Subscription,
    UnknownEvent,
    event_type,
    raw_event,
)
from .api._client import Call, Calls, PendingCalls, PendingSubscription
from .protocol import Key

__version__ = "0.1.0"

__all__ = [
    "AriError",
    "AriProxyError",
    "BadRequestError",
    "BridgeHandle",
    "Call",
    "Calls",
    "ChannelHandle",
    "Client",
    "ClientClosedError",
    "ClosedError",
    "ConflictError",
    "ConnectError",
    "ConnectionDownError",
    "ConnectionGap",
    "ForbiddenError",
    "Handle",
    "InternalServerError",
    "InvalidRequestError",
    "Key",
    "LiveRecordingHandle",
    "NoProxyError",
    "NotFoundError",
    "Overflow",
    "PendingCalls",
    "PendingSubscription",
    "PlaybackHandle",
    "ProtocolError",
    "RequestTimeout",
    "ServiceUnavailableError",
    "Staged",
    "StoredRecordingHandle",
    "Subscription",
    "SubscriptionOverflowError",
    "TooLargeError",
    "TransportError",
    "UnknownEvent",
    "UnknownKindError",
    "UnprocessableEntityError",
    "__version__",
    "connect",
    "event_type",
    "raw_event",
]
