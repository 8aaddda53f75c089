"""Channels: the `client.channels` namespace and `ChannelHandle`.

Durations are seconds (floats) in this API; the wire carries Go's nanoseconds. IDs for new
channels, playbacks, recordings and snoops are generated here, client-side, so a handle (and a
subscription to its events) can exist before the entity does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from .. import protocol as p
from ..protocol import Key, new_id
from ..spec import decode_model
from ..spec.models import Channel, RTPstat
from ._handles import Namespace, Staged
from ._targets import MediaTarget

if TYPE_CHECKING:
    from ._media import LiveRecordingHandle, PlaybackHandle

__all__ = ["ChannelHandle", "Channels", "ns", "recording_options"]


def ns(seconds: float | None) -> int:
    """Seconds as Go nanoseconds (None and 0 mean 'Asterisk's default')."""
    return round((seconds or 0) * 1_000_000_000)


def recording_options(
    format: str,
    max_duration: float | None,
    max_silence: float | None,
    if_exists: str | None,
    beep: bool,
    terminate_on: str | None,
) -> p.RecordingOptions:
    """The recording options of a record request."""
    return p.RecordingOptions(
        format=format,
        max_duration=ns(max_duration),
        max_silence=ns(max_silence),
        exists=if_exists or "",
        beep=beep,
        terminate=terminate_on or "",
    )


class Channels(Namespace):
    """`client.channels`: originate, create and find channels."""

    __slots__ = ()

    def handle(self, channel_id: str, *, node: str | None = None) -> ChannelHandle:
        """A handle for a channel ID (no I/O). Without `node`, requests go to every proxy."""
        return ChannelHandle(self._client, self._client.key("channel", channel_id, node))

    async def get(self, channel_id: str) -> ChannelHandle:
        """Find a channel (a round trip, which also learns its node through the proxy).

        Raises:
            NotFoundError: no such channel.
        """
        return await self._find("ChannelGet", ChannelHandle, channel_id)

    async def list(self) -> list[ChannelHandle]:
        """Every channel (of every node, through the proxy), as handles."""
        return await self._all("ChannelList", ChannelHandle)

    def _originate(
        self,
        endpoint: str,
        *,
        app: str | None,
        app_args: str | Sequence[str] | None,
        context: str | None,
        extension: str | None,
        priority: int | None,
        label: str | None,
        caller_id: str | None,
        timeout: float | None,
        variables: Mapping[str, str] | None,
        channel_id: str | None,
        other_channel_id: str | None,
        originator: str | ChannelHandle | None,
        formats: str | Sequence[str] | None,
    ) -> p.ChannelOriginate:
        if app is None and extension is None and context is None:
            app = self._client.application
        return p.ChannelOriginate(
            p.OriginateRequest(
                endpoint=endpoint,
                timeout=int(timeout or 0),
                caller_id=caller_id or "",
                context=context or "",
                extension=extension or "",
                priority=priority or 0,
                label=label or "",
                app=app or "",
                app_args=_joined(app_args),
                formats=_joined(formats),
                channel_id=channel_id or new_id("ch"),
                other_channel_id=other_channel_id or "",
                originator=originator.id
                if isinstance(originator, ChannelHandle)
                else originator or "",
                variables=dict(variables or {}),
            )
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout: float | None = None,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | ChannelHandle | None = None,
        formats: str | Sequence[str] | None = None,
        node: str | None = None,
    ) -> ChannelHandle:
        """Originate a call to `endpoint` (such as `PJSIP/100` or `Local/100@default`).

        Without `context`/`extension`, the answered channel enters this client's application
        (or `app`). `timeout` is seconds to wait for an answer. Returns the channel's handle.

        Raises:
            BadRequestError: invalid parameters; AriError otherwise as Asterisk answers.
        """
        payload = self._originate(
            endpoint, app=app, app_args=app_args, context=context, extension=extension,
            priority=priority, label=label, caller_id=caller_id, timeout=timeout,
            variables=variables, channel_id=channel_id, other_channel_id=other_channel_id,
            originator=originator, formats=formats,
        )  # fmt: skip
        key = self._client.key("", "", node)
        result = await self._client.request("ChannelOriginate", key, payload)
        return ChannelHandle(self._client, self._client.adopt(result.key or Key()))

    async def stage_originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout: float | None = None,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | ChannelHandle | None = None,
        formats: str | Sequence[str] | None = None,
        node: str | None = None,
    ) -> Staged[ChannelHandle]:
        """Stage an originate: the channel ID (and, through the proxy, the node) is fixed now,
        the call is placed by `execute()`, so you can subscribe to its events in between."""
        payload = self._originate(
            endpoint, app=app, app_args=app_args, context=context, extension=extension,
            priority=priority, label=label, caller_id=caller_id, timeout=timeout,
            variables=variables, channel_id=channel_id, other_channel_id=other_channel_id,
            originator=originator, formats=formats,
        )  # fmt: skip
        result = await self._client.request(
            "ChannelStageOriginate", self._client.key("", "", node), payload
        )
        handle = ChannelHandle(self._client, self._client.adopt(result.key or Key()))

        async def run(h: ChannelHandle) -> ChannelHandle:
            request = p.ChannelOriginate(_replace_channel_id(payload.originate_request, h.id))
            # As Go: the reference key (node, app, dialog), not the new channel's key, which
            # the kind would read as the originator: a channel that does not exist yet.
            done = await self._client.request("ChannelOriginate", h.key.new("", ""), request)
            return ChannelHandle(self._client, self._client.adopt(done.key or h.key))

        return Staged(handle, run)

    async def create(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | ChannelHandle | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Mapping[str, str] | None = None,
        node: str | None = None,
    ) -> ChannelHandle:
        """Create a channel to `endpoint` without dialing it; `dial()` it later."""
        payload = p.ChannelCreate(
            p.ChannelCreateRequest(
                endpoint=endpoint,
                app=app or self._client.application,
                app_args=_joined(app_args),
                channel_id=channel_id or new_id("ch"),
                other_channel_id=other_channel_id or "",
                originator=originator.id
                if isinstance(originator, ChannelHandle)
                else originator or "",
                formats=_joined(formats),
                variables=dict(variables or {}),
            )
        )
        result = await self._client.request(
            "ChannelCreate", self._client.key("", "", node), payload
        )
        return ChannelHandle(self._client, self._client.adopt(result.key or Key()))

    def _external_media(
        self,
        format: str,
        external_host: str,
        app: str | None,
        channel_id: str | None,
        encapsulation: str,
        transport: str,
        connection_type: str,
        direction: str,
        variables: Mapping[str, str] | None,
        data: str,
        transport_data: str,
    ) -> p.ChannelExternalMedia:
        return p.ChannelExternalMedia(
            p.ExternalMediaOptions(
                channel_id=channel_id or new_id("ch"),
                app=app or self._client.application,
                external_host=external_host,
                encapsulation=encapsulation,
                transport=transport,
                connection_type=connection_type,
                format=format,
                direction=direction,
                variables=dict(variables) if variables else None,
                data=data,
                transport_data=transport_data,
            )
        )

    async def external_media(
        self,
        *,
        format: str,
        external_host: str = "",
        app: str | None = None,
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        connection_type: str = "client",
        direction: str = "both",
        variables: Mapping[str, str] | None = None,
        data: str = "",
        transport_data: str = "",
        node: str | None = None,
    ) -> ChannelHandle:
        """Create a channel that sends and receives media to `external_host` (RTP, AudioSocket
        or WebSocket encapsulation), in application `app`."""
        payload = self._external_media(
            format, external_host, app, channel_id, encapsulation, transport, connection_type,
            direction, variables, data, transport_data,
        )  # fmt: skip
        result = await self._client.request(
            "ChannelExternalMedia", self._client.key("", "", node), payload
        )
        return ChannelHandle(self._client, self._client.adopt(result.key or Key()))

    async def stage_external_media(
        self,
        *,
        format: str,
        external_host: str = "",
        app: str | None = None,
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        connection_type: str = "client",
        direction: str = "both",
        variables: Mapping[str, str] | None = None,
        data: str = "",
        transport_data: str = "",
        node: str | None = None,
    ) -> Staged[ChannelHandle]:
        """Stage an external media channel: the options are checked and the ID and node fixed
        now, the channel is made by `execute()`. (Go's client sends the wrong kind for this.)"""
        payload = self._external_media(
            format, external_host, app, channel_id, encapsulation, transport, connection_type,
            direction, variables, data, transport_data,
        )  # fmt: skip
        result = await self._client.request(
            "ChannelStageExternalMedia", self._client.key("", "", node), payload
        )
        handle = ChannelHandle(self._client, self._client.adopt(result.key or Key()))

        async def run(h: ChannelHandle) -> ChannelHandle:
            options = msgspec.structs.replace(payload.options, channel_id=h.id)
            staged = p.ChannelExternalMedia(options)
            done = await self._client.request("ChannelExternalMedia", h.key.new("", ""), staged)
            return ChannelHandle(self._client, self._client.adopt(done.key or h.key))

        return Staged(handle, run)


def _joined(value: str | Sequence[str] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else ",".join(value)


def _replace_channel_id(request: p.OriginateRequest, channel_id: str) -> p.OriginateRequest:
    return msgspec.structs.replace(request, channel_id=channel_id)


class ChannelHandle(MediaTarget):
    """A channel. Methods raise `NotFoundError` when the channel is gone and `ConflictError`
    when it is not in a state that allows the operation (for example, not in Stasis)."""

    __slots__ = ()
    kind = "channel"
    follow_kind = "ChannelSubscribe"
    media_kinds = {
        "play": "ChannelPlay",
        "stage_play": "ChannelStagePlay",
        "record": "ChannelRecord",
        "stage_record": "ChannelStageRecord",
    }

    async def data(self) -> Channel:
        """The channel's current state."""
        return decode_model((await self._request("ChannelData")).data, Channel)

    async def answer(self) -> None:
        """Answer the channel."""
        await self._request("ChannelAnswer")

    async def hangup(self, reason: str = "normal", *, reason_code: str | None = None) -> None:
        """Hang up, with a reason (normal, busy, congestion, no_answer, timeout, rejected,
        unallocated, normal_unspecified, number_incomplete, codec_mismatch, interworking,
        failure, answered_elsewhere) or a numeric Q.850 `reason_code`."""
        await self._request(
            "ChannelHangup", p.ChannelHangup(reason=reason, reason_code=reason_code or "")
        )

    async def busy(self) -> None:
        """Hang up with cause busy."""
        await self._request("ChannelBusy")

    async def congestion(self) -> None:
        """Hang up with cause congestion."""
        await self._request("ChannelCongestion")

    async def ring(self) -> None:
        """Indicate ringing."""
        await self._request("ChannelRing")

    async def stop_ring(self) -> None:
        """Stop indicating ringing."""
        await self._request("ChannelStopRing")

    async def progress(self) -> None:
        """Indicate progress (early media)."""
        await self._request("ChannelProgress")

    async def hold(self) -> None:
        """Put the channel on hold."""
        await self._request("ChannelHold")

    async def unhold(self) -> None:
        """Take the channel off hold."""
        await self._request("ChannelStopHold")

    async def mute(self, direction: str = "both") -> None:
        """Mute audio in `direction` (in, out, both)."""
        await self._request("ChannelMute", p.ChannelMute(direction=direction))

    async def unmute(self, direction: str = "both") -> None:
        """Unmute audio in `direction` (in, out, both)."""
        await self._request("ChannelUnmute", p.ChannelMute(direction=direction))

    async def start_moh(self, moh_class: str = "") -> None:
        """Play music on hold (`moh_class` empty: the default class)."""
        await self._request("ChannelMOH", p.ChannelMOH(music=moh_class))

    async def stop_moh(self) -> None:
        """Stop music on hold."""
        await self._request("ChannelStopMOH")

    async def start_silence(self) -> None:
        """Play silence."""
        await self._request("ChannelSilence")

    async def stop_silence(self) -> None:
        """Stop playing silence."""
        await self._request("ChannelStopSilence")

    async def send_dtmf(
        self,
        dtmf: str,
        *,
        before: float = 0,
        between: float = 0,
        duration: float = 0,
        after: float = 0,
    ) -> None:
        """Send DTMF digits; the pauses are seconds (0: Asterisk's default)."""
        options = None
        if before or between or duration or after:
            options = p.DTMFOptions(
                before=ns(before), between=ns(between), duration=ns(duration), after=ns(after)
            )
        await self._request("ChannelSendDTMF", p.ChannelSendDTMF(dtmf=dtmf, options=options))

    async def continue_in_dialplan(
        self,
        context: str = "",
        extension: str = "",
        priority: int = 0,
        *,
        label: str = "",
    ) -> None:
        """Leave the application and continue in the dialplan (empty: where it left)."""
        await self._request(
            "ChannelContinue",
            p.ChannelContinue(context=context, extension=extension, priority=priority, label=label),
        )

    async def move(self, app: str, app_args: str | Sequence[str] | None = None) -> None:
        """Move the channel to another Stasis application."""
        await self._request("ChannelMove", p.ChannelMove(app=app, app_args=_joined(app_args)))

    async def redirect(self, endpoint: str) -> None:
        """Redirect the channel to another endpoint."""
        await self._request("ChannelRedirect", p.ChannelRedirect(endpoint=endpoint))

    async def dial(self, caller: str | ChannelHandle = "", timeout: float = 0) -> None:
        """Dial a channel made with `channels.create()`; `timeout` in seconds."""
        caller_id = caller.id if isinstance(caller, ChannelHandle) else caller
        await self._request("ChannelDial", p.ChannelDial(caller=caller_id, timeout=ns(timeout)))

    async def get_variable(self, name: str) -> str:
        """A channel variable's value (or a dialplan function's, such as `CALLERID(num)`).

        Raises:
            NotFoundError: the variable is not set.
        """
        result = await self._request("ChannelVariableGet", p.ChannelVariable(name=name))
        return result.variable or ""

    async def set_variable(self, name: str, value: str, *, report_events: bool = False) -> None:
        """Set a channel variable."""
        await self._request(
            "ChannelVariableSet",
            p.ChannelVariable(name=name, value=value, report_events=report_events),
        )

    async def get_variables(self, names: Sequence[str]) -> dict[str, str]:
        """Several channel variables at once."""
        result = await self._request("ChannelVariablesGet", p.Variables(names=tuple(names)))
        return _variables(result.data)

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set several channel variables at once."""
        await self._request("ChannelVariablesSet", p.Variables(values=dict(values)))

    async def rtp_statistics(self) -> RTPstat:
        """RTP statistics of the channel's media."""
        return decode_model((await self._request("ChannelRTPStatistics")).data, RTPstat)

    async def transfer_progress(self, states: str) -> None:
        """Report the progress of a transfer the application handles."""
        await self._request("ChannelTransferProgress", p.ChannelTransferProgress(states=states))

    async def claim(self, application: str | None = None) -> None:
        """Claim a broadcast channel (Asterisk 22 `CallBroadcast`) for an application."""
        await self._request(
            "ChannelClaim", p.ChannelClaim(application=application or self._client.application)
        )

    async def user_event(self, name: str, variables: Mapping[str, str] | None = None) -> None:
        """Raise a user event with this channel as its source."""
        body = p.UserEventBody(eventname=name, userevent=dict(variables or {}))
        await self._request("ChannelUserEvent", p.ChannelUserEvent(user_event=body))

    # --- media: each has a staged twin --------------------------------------------------------

    def _play_payload(
        self,
        media: str | Sequence[str],
        playback_id: str | None,
        lang: str,
        offsetms: int,
        skipms: int,
    ) -> p.ChannelPlay:
        return p.ChannelPlay(
            playback_id=playback_id or new_id("pb"),
            media_uri=_joined(media),
            lang=lang,
            offsetms=offsetms,
            skipms=skipms,
        )

    async def play(
        self,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str = "",
        offsetms: int = 0,
        skipms: int = 0,
    ) -> PlaybackHandle:
        """Start playing `media` (`sound:hello-world`, `tone:ring`, `digits:123`, ...; a list
        plays in order) and return the playback's handle."""
        return await self._play(self._play_payload(media, playback_id, lang, offsetms, skipms))

    async def stage_play(
        self,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str = "",
        offsetms: int = 0,
        skipms: int = 0,
    ) -> Staged[PlaybackHandle]:
        """Stage a playback: subscribe to its events, then `execute()` it."""
        return await self._stage_play(
            self._play_payload(media, playback_id, lang, offsetms, skipms)
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
    ) -> p.ChannelRecord:
        options = recording_options(
            format, max_duration, max_silence, if_exists, beep, terminate_on
        )
        return p.ChannelRecord(name=name or new_id("rc"), options=options)

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
    ) -> LiveRecordingHandle:
        """Start recording the channel into `name` (generated when None); `if_exists` is fail,
        overwrite or append; `terminate_on` is none, any, `*` or `#`."""
        return await self._record(
            self._record_payload(
                name, format, max_duration, max_silence, if_exists, beep, terminate_on
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
    ) -> Staged[LiveRecordingHandle]:
        """Stage a recording: subscribe to its events, then `execute()` it."""
        return await self._stage_record(
            self._record_payload(
                name, format, max_duration, max_silence, if_exists, beep, terminate_on
            )
        )

    def _snoop_payload(
        self,
        spy: str,
        whisper: str,
        app: str | None,
        app_args: str | Sequence[str] | None,
        snoop_id: str | None,
    ) -> p.ChannelSnoop:
        return p.ChannelSnoop(
            snoop_id=snoop_id or new_id("sn"),
            options=p.SnoopOptions(
                app=app or self._client.application,
                app_args=_joined(app_args),
                spy=spy,
                whisper=whisper,
            ),
        )

    async def snoop(
        self,
        *,
        spy: str = "none",
        whisper: str = "none",
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> ChannelHandle:
        """Create a snoop channel that spies on (hears) or whispers to (speaks into) this
        channel, in `direction` none, in, out or both; it enters application `app`."""
        payload = self._snoop_payload(spy, whisper, app, app_args, snoop_id)
        result = await self._request("ChannelSnoop", payload)
        return ChannelHandle(self._client, self._client.adopt(result.key or Key()))

    async def stage_snoop(
        self,
        *,
        spy: str = "none",
        whisper: str = "none",
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> Staged[ChannelHandle]:
        """Stage a snoop: subscribe to the snoop channel's events, then `execute()` it."""
        payload = self._snoop_payload(spy, whisper, app, app_args, snoop_id)
        result = await self._request("ChannelStageSnoop", payload)
        handle = ChannelHandle(self._client, self._client.adopt(result.key or Key()))
        target = self.key

        async def run(h: ChannelHandle) -> ChannelHandle:
            staged = msgspec.structs.replace(payload, snoop_id=h.id)
            done = await self._client.request("ChannelSnoop", target, staged)
            return ChannelHandle(self._client, self._client.adopt(done.key or h.key))

        return Staged(handle, run)


def _variables(data: bytes | None) -> dict[str, str]:
    # ARI's Variables model: {"variables": {"name": "value", ...}}
    from ..spec.models import Variables

    return {k: str(v) for k, v in decode_model(data, Variables).variables.items()}
