"""The dialog bindings this connection made, so that a restarted server gets them again.

A server keeps its dialog bindings in memory. When a server process is replaced (a crash, a
redeploy) the new one announces a new epoch and routes no dialog events until it is told again
which entities each dialog follows. The client remembers, per live dialog, the entities its
requests bound (the kind table says which, exactly as the server computes them) and re-sends
them: `ListenTake` for a call it owns, the entity's `...Subscribe` kind for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..protocol import Invocation, Key, KindName, KindSpec, Result

__all__ = ["Binding", "DialogMemory"]

_REBIND: dict[str, KindName] = {
    "channel": "ChannelSubscribe",
    "bridge": "BridgeSubscribe",
    "playback": "PlaybackSubscribe",
    "liverecording": "RecordingLiveSubscribe",
}
"""The kind that binds an entity of each kind to a dialog again."""

MAX_ENTITIES_PER_DIALOG = 256
"""Entities remembered per dialog; beyond, the oldest is forgotten (it is not rebound)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """An entity bound to a dialog, and how to bind it again."""

    key: Key
    """The entity's key, with its node and the dialog."""
    kind: KindName
    """The request that binds it again."""
    payload: Any = None


class DialogMemory:
    """Bindings per live dialog."""

    def __init__(self) -> None:
        self._dialogs: dict[str, dict[tuple[str, str], Binding]] = {}

    def __len__(self) -> int:
        return sum(len(entities) for entities in self._dialogs.values())

    def record(self, spec: KindSpec, key: Key, payload: Any, result: Result, app: str) -> None:
        """Remember what a successful request with a dialog bound."""
        if not key.dialog or spec.binds is None:
            return
        node = key.node or (result.key.node if result.key is not None else "")
        if not node:
            return
        entities = self._dialogs.setdefault(key.dialog, {})
        for kind, ident in spec.binds(Invocation(spec, key, payload, app, node)):
            if not kind or not ident:
                continue
            if spec.name == "ListenTake" and kind == "channel":
                again: KindName = "ListenTake"
                again_payload = payload
            elif kind in _REBIND:
                again, again_payload = _REBIND[kind], None
                known = entities.get((kind, ident))
                if known is not None and known.kind == "ListenTake":
                    continue  # a call this instance took: taken again, not just followed
            else:
                continue
            entities.pop((kind, ident), None)
            entities[(kind, ident)] = Binding(
                Key(kind, ident, node, key.dialog, key.app or app), again, again_payload
            )
            while len(entities) > MAX_ENTITIES_PER_DIALOG:
                del entities[next(iter(entities))]

    def forget(self, dialog: str) -> None:
        """The dialog is no longer followed (its last subscription closed)."""
        self._dialogs.pop(dialog, None)

    def drop(self, binding: Binding) -> None:
        """Forget one binding (its entity is gone)."""
        entities = self._dialogs.get(binding.key.dialog)
        if entities is not None:
            entities.pop((binding.key.kind, binding.key.id), None)

    def on_node(self, node: str) -> list[Binding]:
        """The bindings of entities on `node`, calls (`ListenTake`) first."""
        found = [b for e in self._dialogs.values() for b in e.values() if b.key.node == node]
        return sorted(found, key=lambda b: b.kind != "ListenTake")

    def dialogs_on(self, node: str) -> set[str]:
        """The dialogs following an entity on `node`."""
        return {b.key.dialog for b in self.on_node(node)}
