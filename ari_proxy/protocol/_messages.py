"""The envelopes on the bus: requests, replies and announcements (docs/protocol.md, "Envelopes" and
"Announcements"), their encoders and decoders, and the helpers that put entities into replies and
prepare ARI events for publication (docs/protocol.md, "Events").

Field order and `omitempty` follow Go, so `go_escape(encode(x))` is byte-identical to what Go
sends. Go ignores unknown fields, so our envelopes may carry extension fields (documented on
each struct) after Go's; they are omitted when unset.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, get_args

import msgspec

from ._json import EMPTY_RAW, Buffer, decode, encode, kept, replace_members, splice_front
from ._key import Key
from ._payloads import (
    ApplicationEventFilter,
    ApplicationSubscribe,
    AsteriskConfig,
    AsteriskInfoQuery,
    AsteriskLoggingChannel,
    AsteriskVariableSet,
    BridgeAddChannel,
    BridgeCreate,
    BridgeMOH,
    BridgePlay,
    BridgeRecord,
    BridgeRemoveChannel,
    BridgeVariable,
    BridgeVideoSource,
    ChannelClaim,
    ChannelContinue,
    ChannelCreate,
    ChannelDial,
    ChannelExternalMedia,
    ChannelHangup,
    ChannelMOH,
    ChannelMove,
    ChannelMute,
    ChannelOriginate,
    ChannelPlay,
    ChannelRecord,
    ChannelRedirect,
    ChannelSendDTMF,
    ChannelSnoop,
    ChannelTransferProgress,
    ChannelUserEvent,
    ChannelVariable,
    DeviceStateUpdate,
    EndpointListByTech,
    EndpointRefer,
    EndpointSendMessage,
    ListenState,
    ListenTake,
    MailboxUpdate,
    PlaybackControl,
    RecordingStoredCopy,
    SoundList,
    UserEvent,
    Variables,
)

__all__ = [
    "PAYLOAD_TYPES",
    "Announcement",
    "EntityData",
    "ErrorCode",
    "Presence",
    "PresenceRole",
    "Request",
    "Response",
    "decode_announcement",
    "decode_presence",
    "decode_request",
    "decode_response",
    "empty_variable_data",
    "encode_announcement",
    "encode_presence",
    "encode_request",
    "encode_response",
    "entity_with_key",
    "stamp_event",
    "variable_data",
    "with_dialog",
]


# --- envelopes -------------------------------------------------------------------------------


class Request(msgspec.Struct, frozen=True, omit_defaults=True):
    """A request from a client to servers (Go `proxy.Request`).

    `kind` and `key` are always sent (`"key":null` when `None`); the payload fields are
    omitted when `None`, and a Go client sets at most one. A body without `kind` decodes
    with `kind == ""`, which a server answers as an unknown kind, as Go does.

    Extensions: the payload fields after `sound_list` belong to our own kinds.
    """

    kind: str = kept("")
    key: Key | None = kept(None)
    application_subscribe: ApplicationSubscribe | None = None
    asterisk_config: AsteriskConfig | None = None
    asterisk_logging_channel: AsteriskLoggingChannel | None = None
    asterisk_variable_set: AsteriskVariableSet | None = None
    bridge_add_channel: BridgeAddChannel | None = None
    bridge_create: BridgeCreate | None = None
    bridge_moh: BridgeMOH | None = None
    bridge_play: BridgePlay | None = None
    bridge_record: BridgeRecord | None = None
    bridge_remove_channel: BridgeRemoveChannel | None = None
    bridge_video_source: BridgeVideoSource | None = None
    channel_create: ChannelCreate | None = None
    channel_continue: ChannelContinue | None = None
    channel_dial: ChannelDial | None = None
    channel_hangup: ChannelHangup | None = None
    channel_moh: ChannelMOH | None = None
    channel_mute: ChannelMute | None = None
    channel_originate: ChannelOriginate | None = None
    channel_play: ChannelPlay | None = None
    channel_record: ChannelRecord | None = None
    channel_send_dtmf: ChannelSendDTMF | None = None
    channel_snoop: ChannelSnoop | None = None
    channel_external_media: ChannelExternalMedia | None = None
    channel_variable: ChannelVariable | None = None
    channel_user_event: ChannelUserEvent | None = None
    device_state_update: DeviceStateUpdate | None = None
    endpoint_list_by_tech: EndpointListByTech | None = None
    mailbox_update: MailboxUpdate | None = None
    playback_control: PlaybackControl | None = None
    recording_stored_copy: RecordingStoredCopy | None = None
    sound_list: SoundList | None = None
    # Extensions: the payloads of our own kinds, after Go's fields.
    application_event_filter: ApplicationEventFilter | None = None
    asterisk_info: AsteriskInfoQuery | None = None
    bridge_variable: BridgeVariable | None = None
    variables: Variables | None = None
    channel_move: ChannelMove | None = None
    channel_redirect: ChannelRedirect | None = None
    channel_transfer_progress: ChannelTransferProgress | None = None
    endpoint_send_message: EndpointSendMessage | None = None
    endpoint_refer: EndpointRefer | None = None
    user_event: UserEvent | None = None
    channel_claim: ChannelClaim | None = None
    listen_take: ListenTake | None = None
    listen_state: ListenState | None = None
    # Extension: when the caller gives up (Unix time, seconds; 0 for never). A server does not
    # start a request whose deadline has passed (docs/protocol.md, "Envelopes").
    deadline: float = 0.0


PAYLOAD_TYPES: Final[Mapping[str, type[Any]]] = MappingProxyType(
    {
        field.name: next(t for t in get_args(field.type) if t is not type(None))
        for field in msgspec.structs.fields(Request)
        if field.name not in ("kind", "key", "deadline")
    }
)
"""Each payload member of `Request` -> its struct type (what a kind's `payload` names)."""


class EntityData(msgspec.Struct, frozen=True, omit_defaults=True):
    """The `data` of a reply (Go `proxy.EntityData`): one entity, or a variable value.

    Entities stay raw JSON (`msgspec.Raw`); an absent one is the empty `Raw`, which is falsy
    and never encoded, so test presence with `if data.channel:`. `variable` is `None` when
    absent; Go omits an empty variable, so `""` and absent mean the same (see `variable_data`).

    Extensions, for our own kinds: `asterisk_ping`, `rtp_statistics`, `variables` (several
    variables) and `file` (a stored recording's file, in whatever JSON form the kind defines).
    """

    application: msgspec.Raw = EMPTY_RAW
    asterisk: msgspec.Raw = EMPTY_RAW
    bridge: msgspec.Raw = EMPTY_RAW
    channel: msgspec.Raw = EMPTY_RAW
    config: msgspec.Raw = EMPTY_RAW
    device_state: msgspec.Raw = EMPTY_RAW
    endpoint: msgspec.Raw = EMPTY_RAW
    live_recording: msgspec.Raw = EMPTY_RAW
    log: msgspec.Raw = EMPTY_RAW
    mailbox: msgspec.Raw = EMPTY_RAW
    module: msgspec.Raw = EMPTY_RAW
    playback: msgspec.Raw = EMPTY_RAW
    sound: msgspec.Raw = EMPTY_RAW
    stored_recording: msgspec.Raw = EMPTY_RAW
    text_message: msgspec.Raw = EMPTY_RAW
    variable: str | None = None
    # Extensions for the replies of our own kinds, after Go's fields.
    asterisk_ping: msgspec.Raw = EMPTY_RAW
    rtp_statistics: msgspec.Raw = EMPTY_RAW
    variables: msgspec.Raw = EMPTY_RAW
    file: msgspec.Raw = EMPTY_RAW

    def __post_init__(self) -> None:
        # msgspec omits a default by identity, so an empty Raw passed by a caller would be
        # written as `"name":` with no value; swap it for the omitted sentinel.
        for name in _ENTITY_FIELDS:
            value = getattr(self, name)
            if not value and value is not EMPTY_RAW:
                msgspec.structs.force_setattr(self, name, EMPTY_RAW)

    def which(self) -> str | None:
        """The name of the field that is set: `"variable"` if it is, else the first entity field
        (`"channel"`, ...), or `None` for an empty `data`."""
        if self.variable is not None:
            return "variable"
        for name in _ENTITY_FIELDS:
            if getattr(self, name):
                return name
        return None


_ENTITY_FIELDS: Final = tuple(f for f in EntityData.__struct_fields__ if f != "variable")


class ErrorCode(enum.StrEnum):
    """Machine codes our servers put in `Response.code` (Go peers ignore the field)."""

    ARI_DOWN = "ari_down"
    """The proxy's ARI connection is down; nothing was attempted."""
    ARI_ERROR = "ari_error"
    """Asterisk answered with an error status (see `status`)."""
    BAD_REQUEST = "bad_request"
    """The request was malformed or incomplete; Asterisk was not asked."""
    BUSY = "busy"
    """The proxy has too many requests in flight; retry later."""
    INTERNAL = "internal"
    """The proxy failed in a way it did not expect (a bug: the reply says what)."""
    NOT_FOUND = "not_found"
    """The entity does not exist."""
    NOT_IMPLEMENTED = "not_implemented"
    """Unknown kind."""
    TIMEOUT = "timeout"
    """Asterisk did not answer in time."""
    TOO_LARGE = "too_large"
    """The request or the reply exceeds the size the bus carries."""
    TAKEN = "taken"
    """The offered call is already another instance's (`ListenTake`), or the instance saving
    a call's state or releasing it is not its owner (`ListenSaveState`, `ListenRelease`)."""
    EXPIRED = "expired"
    """The request's deadline passed before the server could start it; nothing was done."""


class Response(msgspec.Struct, frozen=True, omit_defaults=True):
    """A server's reply (Go `proxy.Response`).

    `error` is always sent (`""` on success); `data`, `key` and `keys` are omitted when
    unset, and an absent `keys` decodes as `()`. Four extensions Go ignores: `status`, the
    HTTP status of the ARI error behind `error` (omitted when 0), `code`, a short
    machine code such as an `ErrorCode`, `message`, Asterisk's own explanation, and `node`
    (these three omitted when empty).
    """

    error: str = kept("")
    data: EntityData | None = None
    key: Key | None = None
    keys: tuple[Key, ...] = ()
    status: int = 0
    code: str = ""
    message: str = ""
    node: str = ""
    """Extension: the node of the server that answered (clients tell gathered replies apart)."""

    @property
    def ok(self) -> bool:
        """Whether the reply reports success (an empty `error`)."""
        return not self.error


class Announcement(msgspec.Struct, frozen=True, omit_defaults=True):
    """A server's announcement that it serves `application` on Asterisk `node` (docs/protocol.md,
    "Announcements").

    Extension: `features`, what our servers offer beyond Go's protocol (omitted when empty, so
    Go peers see exactly Go's announcement). `listen`: StasisStart events are also published
    on `<prefix>listen.<app>.<node>`, for clients that distribute calls.
    """

    node: str = kept("")
    application: str = kept("")
    features: tuple[str, ...] = ()
    epoch: str = ""
    """Extension: random per server process, so a client tells a restarted server (whose
    dialog bindings are gone) from a running one."""
    version: str = ""
    """Extension: the server's version (`ari-proxy nodes` shows it)."""


class PresenceRole(enum.StrEnum):
    """Who says it is there on `<prefix>presence.<role>.<app>`."""

    LISTENER = "listener"
    """An instance in `listen()`: the servers that offer it calls keep track of it."""
    PROXY = "proxy"
    """A server: it says when it stops cleanly, so clients drop it at once."""


class Presence(msgspec.Struct, frozen=True, omit_defaults=True):
    """A peer of ours saying it is there, or that it is leaving (an extension: Go peers neither
    send nor read it; docs/protocol.md, "Presence").

    A listener sends one every `interval` seconds while it takes calls, and one with `leaving`
    when it stops; a server sends one with `leaving` when it stops cleanly.
    """

    role: str = ""
    application: str = ""
    instance: str = ""
    """A listener's instance ID (random per `listen()`)."""
    node: str = ""
    """A server's node."""
    epoch: str = ""
    """A server's epoch (as in its announcements)."""
    interval: float = 0.0
    """Seconds until the next one (listeners)."""
    leaving: bool = False


# --- encoding and decoding -------------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    """`request` as JSON (apply `go_escape` for Go's exact bytes)."""
    return encode(request)


def decode_request(data: Buffer) -> Request:
    """Decode a request body; raise `ProtocolError` if it is not a JSON object of that shape."""
    return decode(data, Request, what="request")


def encode_response(response: Response) -> bytes:
    """`response` as JSON (apply `go_escape` for Go's exact bytes)."""
    return encode(response)


def decode_response(data: Buffer) -> Response:
    """Decode a reply body; raise `ProtocolError` if it is not a JSON object of that shape."""
    return decode(data, Response, what="response")


def encode_announcement(announcement: Announcement) -> bytes:
    """`announcement` as JSON."""
    return encode(announcement)


def decode_announcement(data: Buffer) -> Announcement:
    """Decode an announcement; raise `ProtocolError` if it is not a JSON object of that shape."""
    return decode(data, Announcement, what="announcement")


def encode_presence(presence: Presence) -> bytes:
    """`presence` as JSON."""
    return encode(presence)


def decode_presence(data: Buffer) -> Presence:
    """Decode a presence message; raise `ProtocolError` if it is not one."""
    return decode(data, Presence, what="presence")


def entity_with_key(raw_object: bytes, key: Key) -> msgspec.Raw:
    """The ARI entity object `raw_object` with `"key":<key>` as its first member.

    This is how Go's data structs start (docs/protocol.md, "Envelopes"). A `key` member already in
    the object is replaced where it stands. Raises `ProtocolError` if `raw_object` is not a JSON
    object.
    """
    key_json = encode(key)
    # A member named key could hide behind an escape such as "\u006bey", hence the backslash.
    if b'"key"' in raw_object or b"\\" in raw_object:
        return msgspec.Raw(replace_members(raw_object, {"key": key_json}, what="entity"))
    return msgspec.Raw(splice_front(raw_object, b'"key":' + key_json))


def variable_data(value: str) -> EntityData:
    """The `data` of a variable reply, as Go sends it: an empty value is omitted (`{}`)."""
    return EntityData(variable=value) if value else EntityData()


def empty_variable_data() -> EntityData:
    """The `data` Go sends for an unset or empty variable: `{}` (never omit `data` itself)."""
    return EntityData()


# --- events ----------------------------------------------------------------------------------


class _EventHead(msgspec.Struct):
    """The top-level members of an event that the bus helpers look at, as raw JSON."""

    application: msgspec.Raw = EMPTY_RAW
    asterisk_id: msgspec.Raw = EMPTY_RAW
    dialog: msgspec.Raw = EMPTY_RAW


def _is_text(value: msgspec.Raw) -> bool:
    """Whether a raw member value is a non-empty JSON string."""
    return len(value) > 2 and bytes(value)[:1] == b'"'


def stamp_event(raw: bytes, application: str, node: str) -> bytes:
    """The event `raw` with `application` and `asterisk_id` filled in where they are missing.

    An event that already has both as non-empty strings is returned unchanged (the usual case:
    Asterisk stamps them). Missing members are inserted at the front; an empty or non-string
    one is replaced where it stands. Raises `ProtocolError` if `raw` is not a JSON object.
    """
    head = decode(raw, _EventHead, what="event")
    has_app = _is_text(head.application)
    has_node = _is_text(head.asterisk_id)
    if has_app and has_node:
        return raw
    values: dict[str, bytes] = {}
    if not has_app:
        values["application"] = encode(application)
    if not has_node:
        values["asterisk_id"] = encode(node)
    if (not has_app and head.application) or (not has_node and head.asterisk_id):
        return replace_members(raw, values, what="event")
    return splice_front(raw, b",".join(b'"%s":%s' % (n.encode(), v) for n, v in values.items()))


def with_dialog(raw: bytes, dialog: str) -> bytes:
    """The event `raw` with `"dialog":"<dialog>"` set, for its copy on a dialog subject.

    Go writes `dialog` right after `application`; when the event starts with its
    `application` member the dialog goes there too (byte-identical to Go), otherwise at the
    front. An existing `dialog` is replaced where it stands. Raises `ProtocolError` if `raw`
    is not a JSON object and `ValueError` if `dialog` is empty.
    """
    if not dialog:
        raise ValueError("a dialog copy needs a non-empty dialog")
    head = decode(raw, _EventHead, what="event")
    value = encode(dialog)
    if head.dialog:
        return replace_members(raw, {"dialog": value}, what="event")
    if head.application:
        lead = b'{"application":' + bytes(head.application)
        end = len(lead)
        if raw.startswith(lead) and raw[end : end + 1] in (b",", b"}"):
            return b"".join((raw[:end], b',"dialog":', value, raw[end:]))
    return splice_front(raw, b'"dialog":' + value)
