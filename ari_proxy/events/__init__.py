"""ARI events: decoding, the entities they concern, and local fan-out to subscriptions.

Used by everything that reads events: the native client, the proxy client and the server.
"""

from ._decode import (
    CallHandover,
    ConnectionGap,
    UnknownEvent,
    decode_event,
    event_keys,
    event_type,
    gap_since,
    raw_event,
)
from ._hub import EventHub, Overflow, Subscription
from ._routing import route_event

__all__ = [
    "CallHandover",
    "ConnectionGap",
    "EventHub",
    "Overflow",
    "Subscription",
    "UnknownEvent",
    "decode_event",
    "event_keys",
    "event_type",
    "gap_since",
    "raw_event",
    "route_event",
]
