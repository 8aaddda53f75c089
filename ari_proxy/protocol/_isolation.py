"""Which ARI applications a request touches besides the one it was sent for.

A server with `proxy.isolate_applications` refuses a request received on application A's
subjects that names another application: an originate, create, snoop or external media into
B, a move to B, a user event or claim for B, or B's own subscriptions, event filter and data.
ARI itself has no owner per entity, so this is what a server can check: where a request would
send a call or whose configuration it would change (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from ._key import Key
from ._kinds import KindSpec

__all__ = ["named_applications"]

# Payload member -> the attribute path of the application it names.
_NAMED: dict[str, tuple[str, ...]] = {
    "channel_create": ("channel_create_request", "app"),
    "channel_originate": ("originate_request", "app"),
    "channel_snoop": ("options", "app"),
    "channel_external_media": ("options", "app"),
    "channel_user_event": ("user_event", "application"),
    "channel_move": ("app",),
    "user_event": ("application",),
    "channel_claim": ("application",),
}


def named_applications(spec: KindSpec, key: Key | None, payload: Any) -> set[str]:
    """The applications `(spec, key, payload)` names: the key's ID for the application kinds
    (`ApplicationSubscribe`, ...), and the application a payload sends a call or an event to.
    Empty names (the server's own default) are left out."""
    names: set[str] = set()
    if spec.entity == "application" and key is not None and key.id:
        names.add(key.id)
    path = _NAMED.get(spec.payload or "")
    if path is not None and payload is not None:
        value: Any = payload
        for attribute in path:
            value = getattr(value, attribute, None)
        if isinstance(value, str) and value:
            names.add(value)
    return names
