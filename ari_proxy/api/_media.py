"""Playbacks, recordings and sounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import protocol as p
from ..protocol import Key
from ..spec import decode_model
from ..spec.models import LiveRecording, Playback, Sound, StoredRecording
from ._handles import Handle, Namespace

if TYPE_CHECKING:
    pass

__all__ = [
    "LiveRecordingHandle",
    "PlaybackHandle",
    "Playbacks",
    "Recordings",
    "SoundHandle",
    "Sounds",
    "StoredRecordingHandle",
]


class Playbacks(Namespace):
    """`client.playbacks`: playbacks started by `play()` on a channel or bridge."""

    __slots__ = ()

    def handle(self, playback_id: str, *, node: str | None = None) -> PlaybackHandle:
        """A handle for a playback ID (no I/O)."""
        return PlaybackHandle(self._client, self._client.key("playback", playback_id, node))

    async def get(self, playback_id: str) -> PlaybackHandle:
        """Find a playback in progress.

        Raises:
            NotFoundError: no such playback (it may have finished).
        """
        result = await self._client.request(
            "PlaybackGet", self._client.key("playback", playback_id)
        )
        return PlaybackHandle(self._client, self._client.adopt(result.key or Key()))


class PlaybackHandle(Handle):
    """A playback of media to a channel or bridge."""

    __slots__ = ()
    kind = "playback"
    follow_kind = "PlaybackSubscribe"

    async def data(self) -> Playback:
        """The playback's current state (queued, playing, continuing, done, ...)."""
        return decode_model((await self._request("PlaybackData")).data, Playback)

    async def stop(self) -> None:
        """Stop the playback."""
        await self._request("PlaybackStop")

    async def control(self, operation: str) -> None:
        """restart, pause, unpause, reverse or forward.

        Raises:
            ConflictError: the playback cannot do that now.
        """
        await self._request("PlaybackControl", p.PlaybackControl(command=operation))

    async def pause(self) -> None:
        """Pause."""
        await self.control("pause")

    async def unpause(self) -> None:
        """Resume after `pause()`."""
        await self.control("unpause")

    async def restart(self) -> None:
        """Start again from the beginning."""
        await self.control("restart")

    async def reverse(self) -> None:
        """Skip back."""
        await self.control("reverse")

    async def forward(self) -> None:
        """Skip forward."""
        await self.control("forward")


class Recordings(Namespace):
    """`client.recordings`: live recordings (in progress) and stored ones (finished files)."""

    __slots__ = ()

    def live(self, name: str, *, node: str | None = None) -> LiveRecordingHandle:
        """A handle for a recording in progress (no I/O)."""
        return LiveRecordingHandle(self._client, self._client.key("liverecording", name, node))

    def stored(self, name: str, *, node: str | None = None) -> StoredRecordingHandle:
        """A handle for a stored recording (no I/O)."""
        return StoredRecordingHandle(self._client, self._client.key("storedrecording", name, node))

    async def get_live(self, name: str) -> LiveRecordingHandle:
        """Find a recording in progress.

        Raises:
            NotFoundError: no such recording.
        """
        result = await self._client.request(
            "RecordingLiveGet", self._client.key("liverecording", name)
        )
        return LiveRecordingHandle(self._client, self._client.adopt(result.key or Key()))

    async def get_stored(self, name: str) -> StoredRecordingHandle:
        """Find a stored recording.

        Raises:
            NotFoundError: no such recording.
        """
        return await self._find("RecordingStoredGet", StoredRecordingHandle, name)

    async def list_stored(self) -> list[StoredRecordingHandle]:
        """Every stored recording, as handles."""
        return await self._all("RecordingStoredList", StoredRecordingHandle)


class LiveRecordingHandle(Handle):
    """A recording in progress."""

    __slots__ = ()
    kind = "liverecording"
    follow_kind = "RecordingLiveSubscribe"

    async def data(self) -> LiveRecording:
        """The recording's state (queued, recording, paused, done, failed, canceled)."""
        return decode_model((await self._request("RecordingLiveData")).data, LiveRecording)

    async def stop(self) -> StoredRecordingHandle:
        """Stop and keep the recording; returns the stored recording's handle."""
        await self._request("RecordingLiveStop")
        return StoredRecordingHandle(self._client, self.key.new("storedrecording", self.id))

    async def cancel(self) -> None:
        """Stop and discard the recording."""
        await self._request("RecordingLiveScrap")

    async def pause(self) -> None:
        """Pause recording (the pause is left out of the file)."""
        await self._request("RecordingLivePause")

    async def unpause(self) -> None:
        """Resume a paused recording."""
        await self._request("RecordingLiveResume")

    async def mute(self) -> None:
        """Record silence instead of audio."""
        await self._request("RecordingLiveMute")

    async def unmute(self) -> None:
        """Record audio again."""
        await self._request("RecordingLiveUnmute")

    def stored(self) -> StoredRecordingHandle:
        """The handle of the file this recording becomes once stopped (no I/O)."""
        return StoredRecordingHandle(self._client, self.key.new("storedrecording", self.id))


class StoredRecordingHandle(Handle):
    """A finished recording on the Asterisk's disk."""

    __slots__ = ()
    kind = "storedrecording"

    async def data(self) -> StoredRecording:
        """Name and format."""
        return decode_model((await self._request("RecordingStoredData")).data, StoredRecording)

    async def delete(self) -> None:
        """Delete the file."""
        await self._request("RecordingStoredDelete")

    async def copy(self, destination: str) -> StoredRecordingHandle:
        """Copy to a new name and return its handle.

        Raises:
            ConflictError: `destination` exists.
        """
        result = await self._request(
            "RecordingStoredCopy", p.RecordingStoredCopy(destination=destination)
        )
        key = result.key or self.key.new("storedrecording", destination)
        return StoredRecordingHandle(self._client, self._client.adopt(key))

    @asynccontextmanager
    async def open(self, *, timeout: float | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream the file, chunk by chunk, without holding it in memory.

        ```python
        async with recording.open() as chunks:
            async for chunk in chunks: ...
        ```
        """
        p.check_request("RecordingStoredFile", self.key, None)  # its name is a path segment
        async with self._client._backend.download(self.key, timeout=timeout) as chunks:
            yield chunks

    async def read(self, *, timeout: float | None = None) -> bytes:
        """The whole file (prefer `open()` or `save()` for large files)."""
        parts = []
        async with self.open(timeout=timeout) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return b"".join(parts)

    async def save(self, path: str | Path, *, timeout: float | None = None) -> int:
        """Write the file to `path`; returns the number of bytes written."""
        size = 0
        # File writes go to a thread so a slow disk never stalls the event loop.
        out = await asyncio.to_thread(open, path, "wb")
        try:
            async with self.open(timeout=timeout) as chunks:
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
                    size += len(chunk)
        finally:
            await asyncio.to_thread(out.close)
        return size


class Sounds(Namespace):
    """`client.sounds`: the sound files Asterisk can play."""

    __slots__ = ()

    def handle(self, sound_id: str, *, node: str | None = None) -> SoundHandle:
        """A handle for a sound ID such as `hello-world` (no I/O)."""
        return SoundHandle(self._client, self._client.key("sound", sound_id, node))

    async def list(self, *, lang: str = "", format: str = "") -> list[SoundHandle]:
        """The sounds, optionally only those in language `lang` and/or `format`."""
        filters = {k: v for k, v in (("lang", lang), ("format", format)) if v}
        payload = p.SoundList(filters=filters or None)
        return await self._all("SoundList", SoundHandle, payload)

    async def data(self, sound_id: str) -> Sound:
        """A sound's languages and formats.

        Raises:
            NotFoundError: no such sound.
        """
        return await self.handle(sound_id).data()


class SoundHandle(Handle):
    """A sound file (all its languages and formats)."""

    __slots__ = ()
    kind = "sound"

    async def data(self) -> Sound:
        """The sound's languages and formats."""
        return decode_model((await self._request("SoundData")).data, Sound)
