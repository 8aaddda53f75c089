"""The entity key every request, reply, handle and event filter carries (docs/protocol.md,
"Envelopes")."""

from __future__ import annotations

import enum

import msgspec

__all__ = ["EntityKind", "Key"]


class EntityKind(enum.StrEnum):
    """The entity kinds a `Key.kind` names, spelled as Go's ari v5 constants.

    `Key.kind` stays a plain `str` on the wire; these are the values Go peers produce.
    `CONFIG` is used by the dynamic-configuration kinds, `VARIABLE` for Asterisk variables
    (never returned as a key kind by Go).
    """

    APPLICATION = "application"
    BRIDGE = "bridge"
    CHANNEL = "channel"
    CONFIG = "config"
    DEVICE_STATE = "devicestate"
    ENDPOINT = "endpoint"
    LIVE_RECORDING = "liverecording"
    LOGGING = "logging"
    MAILBOX = "mailbox"
    MODULE = "module"
    PLAYBACK = "playback"
    SOUND = "sound"
    STORED_RECORDING = "storedrecording"
    VARIABLE = "variable"


class Key(msgspec.Struct, frozen=True, omit_defaults=True):
    """The identity of an ARI entity on one Asterisk node, as Go's `ari.Key`.

    Fields are in Go's order and every one is omitted when empty, so `Key()` encodes as `{}`.
    An empty field is a wildcard for `match`. `node` is the Asterisk entity ID and `app` the
    ARI application; a key with both is *complete* and its requests are unicast.
    """

    kind: str = ""
    id: str = ""
    node: str = ""
    dialog: str = ""
    app: str = ""

    def match(self, other: Key | None) -> bool:
        """Whether `other` matches this key with Go's `Key.Match` semantics.

        `None` matches anything; otherwise each of app, dialog, node, kind and id must be
        equal wherever both sides are non-empty.
        """
        if other is None or other is self:
            return True
        return (
            (not self.app or not other.app or self.app == other.app)
            and (not self.dialog or not other.dialog or self.dialog == other.dialog)
            and (not self.node or not other.node or self.node == other.node)
            and (not self.kind or not other.kind or self.kind == other.kind)
            and (not self.id or not other.id or self.id == other.id)
        )

    def new(self, kind: str, id: str) -> Key:
        """A key for another entity on the same node, app and dialog (Go's `Key.New`)."""
        # str() turns an EntityKind into the plain value so keys compare and print cleanly.
        return Key(str(kind), id, self.node, self.dialog, self.app)

    def stamp(self, node: str, app: str) -> Key:
        """This key with node and app overwritten, as a server stamps the keys it returns."""
        return Key(self.kind, self.id, node, self.dialog, app)

    def with_dialog(self, dialog: str) -> Key:
        """This key with its dialog replaced (an empty string removes it)."""
        return Key(self.kind, self.id, self.node, dialog, self.app)

    @property
    def is_complete(self) -> bool:
        """Whether both app and node are set, so a request on this key is unicast."""
        return bool(self.app) and bool(self.node)

    def __str__(self) -> str:
        # For logs: "channel/abc@test.02:fc:00:00:00:01#dialog", leaving out empty parts.
        text = self.kind
        if self.id:
            text = f"{text}/{self.id}" if text else self.id
        if self.app or self.node:
            text += f"@{self.app}.{self.node}" if self.node else f"@{self.app}"
        if self.dialog:
            text += f"#{self.dialog}"
        return text or "Key()"
