"""What a handed-over call carries: the channel and its bridges as Asterisk has them now.

When a call's owner is gone (docs/handover.md), `CallOffers` asks `Snapshots` for the channels
it is about to offer again; one bridge list serves every channel of the batch, so handing over
N calls costs N + 1 ARI requests. `handover_event` builds the `CallHandover` the listen group
receives.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from .._exceptions import NotFoundError
from ..ari import Executor
from ..protocol import Key, format_go_datetime

__all__ = ["Snapshot", "Snapshots", "handover_event"]

_PARALLEL = 8
"""Channel reads in flight at once while a handover batch is prepared."""

_object = msgspec.json.Decoder(dict[str, object])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One channel's JSON and the JSON of each bridge it is in."""

    channel: bytes
    bridges: tuple[bytes, ...]


class Snapshots:
    """Reads channels and their bridges through an application's executor."""

    def __init__(self, executors: dict[str, Executor]) -> None:
        self._executors = executors

    async def __call__(self, app: str, channels: Sequence[str]) -> dict[str, Snapshot]:
        """The channels of `channels` that still exist, with their bridges.

        Raises:
            AriProxyError: Asterisk did not answer the bridge list.
        """
        executor = self._executors[app]
        bridges = await executor.execute("BridgeList", Key("bridge", ""))
        bridged: dict[str, list[bytes]] = {}
        for entity in bridges.entities:
            members = _object.decode(entity).get("channels")
            for member in members if isinstance(members, list) else ():
                if isinstance(member, str):
                    bridged.setdefault(member, []).append(entity)
        found: dict[str, Snapshot] = {}
        gate = asyncio.Semaphore(_PARALLEL)

        async def read(channel: str) -> None:
            async with gate:
                try:
                    data = await executor.execute("ChannelData", Key("channel", channel))
                except NotFoundError:
                    return  # hung up meanwhile: nothing to hand over
            found[channel] = Snapshot(data.data or b"{}", tuple(bridged.get(channel, ())))

        results = await asyncio.gather(*(read(c) for c in channels), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return found


def handover_event(
    app: str,
    node: str,
    snapshot: Snapshot,
    *,
    previous_owner: str,
    reason: str,
    state: bytes,
    handover_id: str,
) -> bytes:
    """The `CallHandover` event (JSON) offered to the listen group."""
    body = {
        "type": "CallHandover",
        "application": app,
        "asterisk_id": node,
        "timestamp": format_go_datetime(datetime.now(UTC)),
        "channel": json.loads(snapshot.channel),
        "bridges": [json.loads(b) for b in snapshot.bridges],
        "previous_owner": previous_owner,
        "reason": reason,
        "state": base64.b64encode(state).decode(),
        "handover_id": handover_id,
    }
    return json.dumps(body, separators=(",", ":")).encode()
