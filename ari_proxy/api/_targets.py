"""`MediaTarget`: what channels and bridges share, playing media and being recorded."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..protocol import Key, KindName
from ._handles import Handle, Staged
from ._media import LiveRecordingHandle, PlaybackHandle

__all__ = ["MediaTarget"]


class MediaTarget(Handle):
    """A channel or a bridge: media can be played to it and it can be recorded.

    Subclasses name their kinds in `media_kinds` (`play`, `stage_play`, `record`,
    `stage_record`) and build the payloads; the requests and the staging live here once.
    """

    __slots__ = ()
    media_kinds: ClassVar[dict[str, KindName]] = {}

    async def _start(self, what: str, payload: Any, handle_type: type[Any]) -> Any:
        result = await self._request(self.media_kinds[what], payload)
        return handle_type(self._client, self._client.adopt(result.key or Key()))

    async def _stage(self, what: str, payload: Any, handle_type: type[Any], id_field: str) -> Any:
        result = await self._request(self.media_kinds[f"stage_{what}"], payload)
        handle = handle_type(self._client, self._client.adopt(result.key or Key()))
        target, client, kind = self.key, self._client, self.media_kinds[what]

        async def run(h: Any) -> Any:
            # Execute with the ID the stage fixed (the proxy may have generated it).
            staged = msgspec.structs.replace(payload, **{id_field: h.id})
            done = await client.request(kind, target, staged)
            return handle_type(client, client.adopt(done.key or h.key))

        return Staged(handle, run)

    async def _play(self, payload: Any) -> PlaybackHandle:
        handle: PlaybackHandle = await self._start("play", payload, PlaybackHandle)
        return handle

    async def _stage_play(self, payload: Any) -> Staged[PlaybackHandle]:
        staged: Staged[PlaybackHandle] = await self._stage(
            "play", payload, PlaybackHandle, "playback_id"
        )
        return staged

    async def _record(self, payload: Any) -> LiveRecordingHandle:
        handle: LiveRecordingHandle = await self._start("record", payload, LiveRecordingHandle)
        return handle

    async def _stage_record(self, payload: Any) -> Staged[LiveRecordingHandle]:
        staged: Staged[LiveRecordingHandle] = await self._stage(
            "record", payload, LiveRecordingHandle, "name"
        )
        return staged
