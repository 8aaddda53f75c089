"""The payloads of requests and the ari v5 option types they nest (docs/protocol.md, "Envelopes").

Every struct lists its fields in Go's order and omits exactly the fields Go tags `omitempty`,
so that `go_escape(encode(x))` is byte-identical to what Go sends. Go's decoder ignores
unknown fields, so some payloads carry extra optional fields of ours for ARI 22 parameters
that Go never mapped; each struct's docstring lists them, and they are omitted when unset.
The payloads at the end belong to our own kinds, which no Go peer sends.
Durations are integer nanoseconds (Go `time.Duration`), never floats.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._datetime import GO_ZERO_DATETIME
from ._json import EMPTY_RAW, kept

__all__ = [
    "MAX_CALL_STATE",
    "ApplicationEventFilter",
    "ApplicationSubscribe",
    "AsteriskConfig",
    "AsteriskInfoQuery",
    "AsteriskLoggingChannel",
    "AsteriskVariableSet",
    "BridgeAddChannel",
    "BridgeCreate",
    "BridgeMOH",
    "BridgePlay",
    "BridgeRecord",
    "BridgeRemoveChannel",
    "BridgeVariable",
    "BridgeVideoSource",
    "ChannelClaim",
    "ChannelContinue",
    "ChannelCreate",
    "ChannelCreateRequest",
    "ChannelDial",
    "ChannelExternalMedia",
    "ChannelHangup",
    "ChannelMOH",
    "ChannelMove",
    "ChannelMute",
    "ChannelOriginate",
    "ChannelPlay",
    "ChannelRecord",
    "ChannelRedirect",
    "ChannelSendDTMF",
    "ChannelSnoop",
    "ChannelTransferProgress",
    "ChannelUserEvent",
    "ChannelVariable",
    "ConfigTuple",
    "DTMFOptions",
    "DeviceStateUpdate",
    "EndpointListByTech",
    "EndpointRefer",
    "EndpointSendMessage",
    "ExternalMediaOptions",
    "ListenState",
    "ListenTake",
    "MailboxUpdate",
    "OriginateRequest",
    "PlaybackControl",
    "RecordingOptions",
    "RecordingStoredCopy",
    "SnoopOptions",
    "SoundList",
    "UserEvent",
    "UserEventBody",
    "Variables",
]


class _Payload(msgspec.Struct, frozen=True, omit_defaults=True):
    """Base of the payload structs: frozen, defaults omitted unless `kept`."""


# --- nested ari v5 option types --------------------------------------------------------------


class ConfigTuple(msgspec.Struct, frozen=True):
    """One `attribute`/`value` pair of a dynamic configuration object (ari `ConfigTuple`)."""

    attribute: str = ""
    value: str = ""


class RecordingOptions(msgspec.Struct, frozen=True, rename="pascal"):
    """ari `RecordingOptions`: Go gives it no JSON tags, so the keys are capitalised and all
    present. `max_duration` and `max_silence` are nanoseconds; `exists` is fail, overwrite or
    append; `terminate` is none, any, `*` or `#`."""

    format: str = ""
    max_duration: int = 0
    max_silence: int = 0
    exists: str = ""
    beep: bool = False
    terminate: str = ""


class DTMFOptions(msgspec.Struct, frozen=True, rename="pascal"):
    """ari `DTMFOptions`, capitalised like `RecordingOptions`; every value is nanoseconds."""

    before: int = 0
    between: int = 0
    duration: int = 0
    after: int = 0


class SnoopOptions(_Payload, frozen=True, rename="camel"):
    """ari `SnoopOptions`; `spy` and `whisper` take none, in, out or both."""

    app: str = kept("")
    app_args: str = ""
    spy: str = ""
    whisper: str = ""


class OriginateRequest(_Payload, frozen=True, rename="camel"):
    """ari `OriginateRequest`. `timeout` is whole seconds; only `endpoint` is always sent."""

    endpoint: str = kept("")
    timeout: int = 0
    caller_id: str = ""
    context: str = ""
    extension: str = ""
    priority: int = 0
    label: str = ""
    app: str = ""
    app_args: str = ""
    formats: str = ""
    channel_id: str = ""
    other_channel_id: str = ""
    originator: str = ""
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class ChannelCreateRequest(_Payload, frozen=True, rename="camel"):
    """ari `ChannelCreateRequest`; `endpoint` and `app` are always sent.

    Extension: `variables` (ARI 22 `POST /channels/create` body).
    """

    endpoint: str = kept("")
    app: str = kept("")
    app_args: str = ""
    channel_id: str = ""
    other_channel_id: str = ""
    originator: str = ""
    formats: str = ""
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class ExternalMediaOptions(_Payload, frozen=True):
    """ari `ExternalMediaOptions`: no Go field is omitempty, so `variables` may be `null`.

    Extensions: `data` and `transport_data` (ARI 22 `POST /channels/externalMedia`).
    """

    channel_id: str = kept("", name="channelId")
    app: str = kept("")
    external_host: str = kept("")
    encapsulation: str = kept("")
    transport: str = kept("")
    connection_type: str = kept("")
    format: str = kept("")
    direction: str = kept("")
    variables: dict[str, str] | None = kept(None)
    data: str = ""
    transport_data: str = ""


class UserEventBody(_Payload, frozen=True):
    """The ari v5 `ChannelUserevent` event object a `ChannelUserEvent` payload carries.

    The server reads only `eventname` and `userevent` (the user-defined variables). The
    `bridge`, `channel` and `endpoint` objects are kept as raw JSON and omitted when absent,
    which Go decodes as empty; Go clients always send them as zero-value objects.
    """

    application: str = kept("")
    dialog: str = ""
    asterisk_id: str = ""
    timestamp: str = kept(GO_ZERO_DATETIME)
    type: str = kept("")
    bridge: msgspec.Raw = EMPTY_RAW
    channel: msgspec.Raw = EMPTY_RAW
    endpoint: msgspec.Raw = EMPTY_RAW
    eventname: str = kept("")
    userevent: Any = kept(None)


# --- request payloads, one per Request field -------------------------------------------------


class ApplicationSubscribe(_Payload, frozen=True):
    """`application_subscribe`: `channel:<id>`, `bridge:<id>`, `endpoint:<tech>/<res>` or
    `deviceState:<name>`."""

    event_source: str = kept("")


class AsteriskConfig(_Payload, frozen=True):
    """`asterisk_config`: the fields of a dynamic configuration object (omitted when empty)."""

    tuples: tuple[ConfigTuple, ...] = ()


class AsteriskLoggingChannel(_Payload, frozen=True):
    """`asterisk_logging_channel`: comma-separated levels, sent under the JSON name `config`."""

    levels: str = kept("", name="config")


class AsteriskVariableSet(_Payload, frozen=True):
    """`asterisk_variable_set`: the value of the global variable named by `key.id`."""

    value: str = kept("")


class BridgeAddChannel(_Payload, frozen=True):
    """`bridge_add_channel`.

    Extension: `inhibit_connected_line_updates` (ARI 22 `inhibitConnectedLineUpdates`).
    """

    channel: str = kept("")
    absorb_dtmf: bool = msgspec.field(default=False, name="absorbDTMF")
    mute: bool = False
    role: str = ""
    inhibit_connected_line_updates: bool = msgspec.field(
        default=False, name="inhibitConnectedLineUpdates"
    )


class BridgeCreate(_Payload, frozen=True):
    """`bridge_create`: `type` is comma-separated (mixing, holding, dtmf_events, proxy_media).

    Extension: `variables` (ARI 22 `POST /bridges` body).
    """

    type: str = kept("")
    name: str = ""
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class BridgeMOH(_Payload, frozen=True):
    """`bridge_moh`: the music-on-hold class, sent under the JSON name `class`."""

    moh_class: str = kept("", name="class")


class BridgePlay(_Payload, frozen=True):
    """`bridge_play`.

    Extensions (ARI 22 `POST /bridges/{id}/play`): `lang`, `offsetms`, `skipms` and
    `announcer_format`; zero or empty leaves Asterisk's default.
    """

    playback_id: str = kept("")
    media_uri: str = kept("")
    lang: str = ""
    offsetms: int = 0
    skipms: int = 0
    announcer_format: str = ""


class BridgeRecord(_Payload, frozen=True):
    """`bridge_record`; an empty `name` lets the server generate one.

    Extension: `recorder_format` (ARI 22 `POST /bridges/{id}/record`).
    """

    name: str = kept("")
    options: RecordingOptions | None = None
    recorder_format: str = ""


class BridgeRemoveChannel(_Payload, frozen=True):
    """`bridge_remove_channel`: the channel ID to remove."""

    channel: str = kept("")


class BridgeVideoSource(_Payload, frozen=True):
    """`bridge_video_source`: the channel ID to use as the bridge's video source."""

    channel: str = kept("")


class ChannelCreate(_Payload, frozen=True):
    """`channel_create`."""

    channel_create_request: ChannelCreateRequest = msgspec.field(
        default_factory=ChannelCreateRequest
    )


class ChannelContinue(_Payload, frozen=True):
    """`channel_continue`.

    Extension: `label` (ARI 22 `POST /channels/{id}/continue`).
    """

    context: str = kept("")
    extension: str = kept("")
    priority: int = kept(0)
    label: str = ""


class ChannelDial(_Payload, frozen=True):
    """`channel_dial`: `timeout` is nanoseconds (the server sends whole seconds to ARI)."""

    caller: str = kept("")
    timeout: int = kept(0)


class ChannelHangup(_Payload, frozen=True):
    """`channel_hangup`; an empty `reason` means normal.

    Extension: `reason_code` (ARI 22 `DELETE /channels/{id}`, a numeric Q.850 cause).
    """

    reason: str = kept("")
    reason_code: str = ""


class ChannelMOH(_Payload, frozen=True):
    """`channel_moh`: the music-on-hold class (empty for the default)."""

    music: str = kept("")


class ChannelMute(_Payload, frozen=True):
    """`channel_mute`, also used to unmute: in, out or both (empty means both)."""

    direction: str = ""


class ChannelOriginate(_Payload, frozen=True):
    """`channel_originate`."""

    originate_request: OriginateRequest = msgspec.field(default_factory=OriginateRequest)


class ChannelPlay(_Payload, frozen=True):
    """`channel_play`.

    Extensions (ARI 22 `POST /channels/{id}/play`): `lang`, `offsetms` and `skipms`; zero or
    empty leaves Asterisk's default.
    """

    playback_id: str = kept("")
    media_uri: str = kept("")
    lang: str = ""
    offsetms: int = 0
    skipms: int = 0


class ChannelRecord(_Payload, frozen=True):
    """`channel_record`; an empty `name` lets the server generate one."""

    name: str = kept("")
    options: RecordingOptions | None = None


class ChannelSendDTMF(_Payload, frozen=True):
    """`channel_send_dtmf`."""

    dtmf: str = kept("")
    options: DTMFOptions | None = None


class ChannelSnoop(_Payload, frozen=True):
    """`channel_snoop`; an empty `snoop_id` lets the server generate one."""

    snoop_id: str = kept("")
    options: SnoopOptions | None = None


class ChannelExternalMedia(_Payload, frozen=True):
    """`channel_external_media`."""

    options: ExternalMediaOptions = msgspec.field(default_factory=ExternalMediaOptions)


class ChannelVariable(_Payload, frozen=True):
    """`channel_variable`, for both reading and setting a channel variable.

    Extension: `report_events` (ARI 22 `POST /channels/{id}/variable`).
    """

    name: str = kept("")
    value: str = ""
    report_events: bool = False


class ChannelUserEvent(_Payload, frozen=True):
    """`channel_user_event`: Go's field has no JSON tag, so its key is `UserEvent`."""

    user_event: UserEventBody = msgspec.field(default_factory=UserEventBody, name="UserEvent")


class DeviceStateUpdate(_Payload, frozen=True):
    """`device_state_update`: the new state, such as `INUSE` or `NOT_INUSE`."""

    state: str = kept("")


class EndpointListByTech(_Payload, frozen=True):
    """`endpoint_list_by_tech`: the technology, such as `PJSIP`."""

    tech: str = kept("")


class MailboxUpdate(_Payload, frozen=True):
    """`mailbox_update`: message counts."""

    new: int = kept(0)
    old: int = kept(0)


class PlaybackControl(_Payload, frozen=True):
    """`playback_control`: restart, pause, unpause, reverse or forward."""

    command: str = kept("")


class RecordingStoredCopy(_Payload, frozen=True):
    """`recording_stored_copy`: the name of the copy."""

    destination: str = kept("")


class SoundList(_Payload, frozen=True):
    """`sound_list`: `lang`/`format` filters, or `null` (always sent: Go requires the payload)."""

    filters: dict[str, str] | None = kept(None)


# --- payloads of our own kinds (ARI operations Go never mapped; Go peers never send them) -----


class ApplicationEventFilter(_Payload, frozen=True):
    """`application_event_filter`: ARI 22 `PUT /applications/{id}/eventFilter`.

    Each entry is an ARI event filter object such as `{"type": "StasisStart"}`; an empty
    `allowed` allows every type.
    """

    allowed: tuple[dict[str, str], ...] = ()
    disallowed: tuple[dict[str, str], ...] = ()


class AsteriskInfoQuery(_Payload, frozen=True):
    """`asterisk_info`: which parts of `GET /asterisk/info` to return (build, system, config,
    status); empty means all. Optional: Go sends AsteriskInfo without a payload."""

    only: tuple[str, ...] = ()


class BridgeVariable(_Payload, frozen=True):
    """`bridge_variable`: a bridge variable to read, or to set to `value`."""

    name: str = kept("")
    value: str = ""
    report_events: bool = False


class Variables(_Payload, frozen=True):
    """`variables`: several channel or bridge variables, `names` to read or `values` to set."""

    names: tuple[str, ...] = ()
    values: dict[str, str] = msgspec.field(default_factory=dict)


class ChannelMove(_Payload, frozen=True):
    """`channel_move`: the Stasis application to move the channel to."""

    app: str = kept("")
    app_args: str = ""


class ChannelRedirect(_Payload, frozen=True):
    """`channel_redirect`: the endpoint to redirect the channel to."""

    endpoint: str = kept("")


class ChannelTransferProgress(_Payload, frozen=True):
    """`channel_transfer_progress`: the transfer state to report."""

    states: str = kept("")


class EndpointSendMessage(_Payload, frozen=True):
    """`endpoint_send_message`: a text message (`from_` is sent as `from`)."""

    to: str = kept("")
    from_: str = kept("", name="from")
    body: str = ""
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class EndpointRefer(_Payload, frozen=True):
    """`endpoint_refer`: a SIP REFER (`from_` is sent as `from`)."""

    to: str = kept("")
    from_: str = kept("", name="from")
    refer_to: str = kept("")
    to_self: bool = False
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class UserEvent(_Payload, frozen=True):
    """`user_event`: a user event from any sources (the event name is `key.id`).

    `source` is ARI's comma-separated list such as `channel:<id>,bridge:<id>`.
    """

    application: str = ""
    source: str = ""
    variables: dict[str, str] = msgspec.field(default_factory=dict)


class ChannelClaim(_Payload, frozen=True):
    """`channel_claim`: the application claiming a broadcast channel."""

    application: str = kept("")


class ListenTake(_Payload, frozen=True):
    """`listen_take`: an instance in `listen()` taking a call offered to its group.

    `instance` names the taker (random per `listen()`), so a repeated take by the same instance
    (its reply was lost) is granted again while any other is refused as `taken`.
    """

    instance: str = kept("")


MAX_CALL_STATE = 4096
"""Bytes of state an application may save beside one call (`ListenSaveState`), by default."""


class ListenState(_Payload, frozen=True):
    """`listen_state`: the owner of a call saving the state a new owner receives on handover
    (base64 on the wire; at most the server's `proxy.max_call_state` bytes, 4 KiB by default).
    """

    instance: str = kept("")
    state: bytes = b""
