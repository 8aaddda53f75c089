"""Bridges: the `client.bridges` namespace and `BridgeHandle`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import protocol as p
from ..protocol import new_id
from ..spec import decode_model
from ..spec.models import Bridge
from ._channels import ChannelHandle, _joined, _variables, recording_options
from ._handles import Namespace, Staged
from ._targets import MediaTarget

if TYPE_CHECKING:
    from ._media import LiveRecordingHandle, PlaybackHandle

__all__ = ["BridgeHandle", "Bridges"]


def _channel_id(channel: str | ChannelHandle) -> str:
    return channel.id if isinstance(channel, ChannelHandle) else channel


class Bridges(Namespace):
    """`client.bridges`: create and find bridges."""

    __slots__ = ()

    def handle(self, bridge_id: str, *, node: str | None = None) -> BridgeHandle:
        """A handle for a bridge ID (no I/O)."""
        return BridgeHandle(self._client, self._client.key("bridge", bridge_id, node))

    async def get(self, bridge_id: str) -> BridgeHandle:
        """Find a bridge (a round trip).

        Raises:
            NotFoundError: no such bridge.
        """
        return await self._find("BridgeGet", BridgeHandle, bridge_id)

    async def list(self) -> list[BridgeHandle]:
        """Every bridge, as handles."""
        return await self._all("BridgeList", BridgeHandle)

    def _payload(
        self, type: str | Sequence[str], name: str, variables: Mapping[str, str] | None
    ) -> p.BridgeCreate:
        return p.BridgeCreate(type=_joined(type), name=name, variables=dict(variables or {}))

    async def create(
        self,
        type: str | Sequence[str] = "mixing",
        *,
        name: str = "",
        bridge_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        node: str | None = None,
    ) -> BridgeHandle:
        """Create a bridge of `type` (mixing, holding, dtmf_events, proxy_media, video_sfu,
        video_single; several comma-separated) and return its handle."""
        key = self._client.key("bridge", bridge_id or new_id("br"), node)
        result = await self._client.request(
            "BridgeCreate", key, self._payload(type, name, variables)
        )
        return BridgeHandle(self._client, self._client.adopt(result.key or key))

    async def stage_create(
        self,
        type: str | Sequence[str] = "mixing",
        *,
        name: str = "",
        bridge_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        node: str | None = None,
    ) -> Staged[BridgeHandle]:
        """Stage a bridge: subscribe to its events, then `execute()` creates it."""
        payload = self._payload(type, name, variables)
        key = self._client.key("bridge", bridge_id or new_id("br"), node)
        result = await self._client.request("BridgeStageCreate", key, payload)
        handle = BridgeHandle(self._client, self._client.adopt(result.key or key))

        async def run(h: BridgeHandle) -> BridgeHandle:
            done = await self._client.request("BridgeCreate", h.key, payload)
            return BridgeHandle(self._client, self._client.adopt(done.key or h.key))

        return Staged(handle, run)


class BridgeHandle(MediaTarget):
    """A bridge. Methods raise `NotFoundError` when it is gone."""

    __slots__ = ()
    kind = "bridge"
    follow_kind = "BridgeSubscribe"
    media_kinds = {
        "play": "BridgePlay",
        "stage_play": "BridgeStagePlay",
        "record": "BridgeRecord",
        "stage_record": "BridgeStageRecord",
    }

    async def data(self) -> Bridge:
        """The bridge's current state."""
        return decode_model((await self._request("BridgeData")).data, Bridge)

    async def destroy(self) -> None:
        """Destroy the bridge (its channels stay up, outside it)."""
        await self._request("BridgeDelete")

    async def add_channel(
        self,
        channel: str | ChannelHandle,
        *,
        role: str = "",
        absorb_dtmf: bool = False,
        mute: bool = False,
        inhibit_connected_line_updates: bool = False,
    ) -> None:
        """Add a channel to the bridge (a channel in another bridge moves to this one).

        Raises:
            BadRequestError: no such channel (Asterisk 22 answers 400 "Channel not found").
            UnprocessableEntityError: the channel is not in a Stasis application.
            NotFoundError: no such bridge.
            ConflictError: the bridge is not a Stasis bridge (or is being destroyed).
        """
        await self._request(
            "BridgeAddChannel",
            p.BridgeAddChannel(
                channel=_channel_id(channel),
                absorb_dtmf=absorb_dtmf,
                mute=mute,
                role=role,
                inhibit_connected_line_updates=inhibit_connected_line_updates,
            ),
        )

    async def remove_channel(self, channel: str | ChannelHandle) -> None:
        """Remove a channel from the bridge."""
        await self._request(
            "BridgeRemoveChannel", p.BridgeRemoveChannel(channel=_channel_id(channel))
        )

    async def start_moh(self, moh_class: str = "") -> None:
        """Play music on hold to the bridge."""
        await self._request("BridgeMOH", p.BridgeMOH(moh_class=moh_class))

    async def stop_moh(self) -> None:
        """Stop music on hold."""
        await self._request("BridgeStopMOH")

    async def set_video_source(self, channel: str | ChannelHandle) -> None:
        """Use `channel` as the bridge's video source."""
        await self._request("BridgeVideoSource", p.BridgeVideoSource(channel=_channel_id(channel)))

    async def clear_video_source(self) -> None:
        """Go back to talker-based video source selection."""
        await self._request("BridgeVideoSourceDelete")

    async def get_variable(self, name: str) -> str:
        """A bridge variable's value.

        Raises:
            NotFoundError: the variable is not set.
        """
        result = await self._request("BridgeVariableGet", p.BridgeVariable(name=name))
        return result.variable or ""

    async def set_variable(self, name: str, value: str, *, report_events: bool = False) -> None:
        """Set a bridge variable."""
        await self._request(
            "BridgeVariableSet",
            p.BridgeVariable(name=name, value=value, report_events=report_events),
        )

    async def get_variables(self, names: Sequence[str]) -> dict[str, str]:
        """Several bridge variables at once."""
        result = await self._request("BridgeVariablesGet", p.Variables(names=tuple(names)))
        return _variables(result.data)

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set several bridge variables at once."""
        await self._request("BridgeVariablesSet", p.Variables(values=dict(values)))

    def _play_payload(
        self,
        media: str | Sequence[str],
        playback_id: str | None,
        lang: str,
        offsetms: int,
        skipms: int,
        announcer_format: str,
    ) -> p.BridgePlay:
        return p.BridgePlay(
            playback_id=playback_id or new_id("pb"),
            media_uri=_joined(media),
            lang=lang,
            offsetms=offsetms,
            skipms=skipms,
            announcer_format=announcer_format,
        )

    async def play(
        self,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str = "",
        offsetms: int = 0,
        skipms: int = 0,
        announcer_format: str = "",
    ) -> PlaybackHandle:
        """Play media to everyone in the bridge; returns the playback's handle."""
        return await self._play(
            self._play_payload(media, playback_id, lang, offsetms, skipms, announcer_format)
        )

    async def stage_play(
        self,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str = "",
        offsetms: int = 0,
        skipms: int = 0,
        announcer_format: str = "",
    ) -> Staged[PlaybackHandle]:
        """Stage a bridge playback: subscribe, then `execute()`."""
        return await self._stage_play(
            self._play_payload(media, playback_id, lang, offsetms, skipms, announcer_format)
        )

    def _record_payload(
        self,
        name: str | None,
        format: str,
        max_duration: float | None,
        max_silence: float | None,
        if_exists: str | None,
        beep: bool,
        terminate_on: str | None,
        recorder_format: str,
    ) -> p.BridgeRecord:
        options = recording_options(
            format, max_duration, max_silence, if_exists, beep, terminate_on
        )
        return p.BridgeRecord(
            name=name or new_id("rc"), options=options, recorder_format=recorder_format
        )

    async def record(
        self,
        name: str | None = None,
        *,
        format: str = "wav",
        max_duration: float | None = None,
        max_silence: float | None = None,
        if_exists: str | None = None,
        beep: bool = False,
        terminate_on: str | None = None,
        recorder_format: str = "",
    ) -> LiveRecordingHandle:
        """Record the bridge's mixed audio into `name` (generated when None)."""
        return await self._record(
            self._record_payload(
                name,
                format,
                max_duration,
                max_silence,
                if_exists,
                beep,
                terminate_on,
                recorder_format,
            )
        )

    async def stage_record(
        self,
        name: str | None = None,
        *,
        format: str = "wav",
        max_duration: float | None = None,
        max_silence: float | None = None,
        if_exists: str | None = None,
        beep: bool = False,
        terminate_on: str | None = None,
        recorder_format: str = "",
    ) -> Staged[LiveRecordingHandle]:
        """Stage a bridge recording: subscribe, then `execute()`."""
        return await self._stage_record(
            self._record_payload(
                name,
                format,
                max_duration,
                max_silence,
                if_exists,
                beep,
                terminate_on,
                recorder_format,
            )
        )
