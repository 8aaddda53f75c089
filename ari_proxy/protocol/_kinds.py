"""The request kinds: one row per kind, driving the server, both clients, the docs and the tests.

A row says which subject class carries the kind, which payload field it reads, which ARI
operation it runs and how key and payload become that operation's parameters, what the reply
holds, and which dialog bindings it creates. Nothing here does I/O: `ari_proxy.ari._executor`
interprets the rows against a live Asterisk, the server puts the result on the bus, and the proxy
client decodes it.

The 111 kinds of the Go reference keep their names, classes, payloads and replies (PROTOCOL.md
§3.3); the binding types Go gets wrong (`recording`, `deviceState`) are fixed. ARI operations Go
never mapped get kinds of our own (`go=False`), whose payloads are extensions Go peers ignore.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from ._key import Key
from ._subjects import RequestClass

__all__ = [
    "KINDS",
    "Args",
    "Call",
    "KindSpec",
    "Reply",
    "split_config_id",
    "split_endpoint_id",
]


class Reply(enum.Enum):
    """What a successful reply carries."""

    OK = "ok"
    """Nothing: `{"error":""}`."""
    DATA = "data"
    """`data.<data field>`: the entity (ARI's JSON with the request key, stamped, first)."""
    VARIABLE = "variable"
    """`data.variable`: a string value."""
    KEY_REQUEST = "key_request"
    """`key`: the request key, stamped (kind copied, dialog kept)."""
    KEY_RESULT = "key_result"
    """`key`: `{result kind, result id}` stamped, no dialog."""
    KEYS = "keys"
    """`keys`: one key per listed entity (a list gather)."""


class Args(NamedTuple):
    """The parameters of one ARI operation call."""

    path: Mapping[str, str]
    query: Mapping[str, object]
    body: object = None


@dataclass(slots=True)
class Call:
    """One request being executed: its kind, key and payload, and who executes it.

    `generated` holds the ID the executor generated for a kind that creates something without
    a caller-chosen ID (playback, recording name, channel, bridge, snoop).
    """

    spec: KindSpec
    key: Key
    payload: Any
    app: str = ""
    node: str = ""
    generated: str = ""

    @property
    def id(self) -> str:
        """The key's ID."""
        return self.key.id


ArgsFn = Callable[[Call], Args]
CheckFn = Callable[[Call], str | None]
IdFn = Callable[[Call], str]
BindFn = Callable[[Call], tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One request kind.

    Attributes:
        name: the kind on the wire, e.g. `ChannelAnswer`.
        cls: subject class the clients use for it.
        entity: entity kind the request key names (`channel`), or `""`.
        needs_id: whether the key must carry an ID (otherwise `"<entity> key not supplied"`).
        payload: the `Request` attribute holding the payload, or None.
        payload_required: whether a request without the payload is refused.
        operation: the ARI operation (`channels.answer`); None when no ARI call is made.
        args: builds the operation's parameters from the call.
        check: an ARI GET run first to check the target exists (its error is the reply).
        reply: what a successful reply carries.
        data: the `EntityData` field for `DATA` replies.
        result: entity kind of the key in `KEY_RESULT` replies, or of each key in `KEYS` replies.
        result_id: the ID of a `KEY_RESULT` key; for `KEYS`, the JSON member naming each entity.
        generate: (where, suffix): the executor fills an empty ID at `where` with a new rid.
        binds: dialog bindings `(entity kind, id)` made when the key has a dialog.
        wrap: how ARI errors are worded (a `str.format` template with `{error}`, `{id}`, `{app}`
            and `{source}`), to match the Go reference's strings.
        filter_by_key: list entries are kept only when they match the request key.
        select: the operation lists entities; reply with the one whose `select` member equals
            the key ID (`not found` when none does).
        validate: returns why the request cannot run (the error text), or None.
        go: whether the kind exists in Go ari-proxy v5.
        summary: one line for the docs.
    """

    name: str
    cls: RequestClass
    entity: str = ""
    needs_id: bool = True
    payload: str | None = None
    payload_required: bool = False
    operation: str | None = None
    args: ArgsFn | None = None
    check: str | None = None
    reply: Reply = Reply.OK
    data: str = ""
    result: str = ""
    result_id: IdFn | str | None = None
    generate: tuple[str, str] | None = None
    binds: BindFn | None = None
    wrap: str = "{error}"
    filter_by_key: bool = False
    select: str = ""
    validate: CheckFn | None = None
    go: bool = True
    summary: str = ""


# --- parameter helpers ------------------------------------------------------------------------

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000


def _id(name: str) -> ArgsFn:
    """Only the key's ID, as path parameter `name`."""
    return lambda c: Args({name: c.key.id}, {})


def split_config_id(ident: str) -> tuple[str, str, str] | None:
    """`class/type/id` of a dynamic configuration key, or None when it has not three parts."""
    parts = ident.split("/", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def split_endpoint_id(ident: str) -> tuple[str, str] | None:
    """`tech/resource` of an endpoint key, or None."""
    tech, sep, resource = ident.partition("/")
    if not sep or not tech or not resource:
        return None
    return tech, resource


def _endpoint_key(c: Call) -> str | None:
    if c.key.kind != "endpoint":
        return "wrong key type"
    if split_endpoint_id(c.key.id) is None:
        return f"endpoint key {c.key.id!r} is not of the form tech/resource"
    return None


def _config_key(c: Call) -> str | None:
    if split_config_id(c.key.id) is None:
        return "failed to parse configuration key: invalid input ID"
    return None


def _external_media(c: Call) -> str | None:
    options = c.payload.options
    # AudioSocket and WebSocket connections need no host; RTP does.
    if not options.external_host and (options.encapsulation or "rtp") == "rtp":
        return "ExternalHost is mandatory"
    if not options.format:
        return "Format is mandatory"
    return None


def _config_args(c: Call, body: object = None) -> Args:
    parts = split_config_id(c.key.id)
    if parts is None:  # the executor refuses such keys before building arguments
        raise ValueError("invalid input ID")
    return Args({"configClass": parts[0], "objectType": parts[1], "id": parts[2]}, {}, body)


def _endpoint_args(c: Call) -> Args:
    parts = split_endpoint_id(c.key.id)
    if parts is None:
        raise ValueError("invalid endpoint ID")
    return Args({"tech": parts[0], "resource": parts[1]}, {})


def _opt(value: Any) -> Any:
    """Empty strings, zeros and empty collections mean 'Asterisk's default': leave them out."""
    return value if value else None


def _recording_query(p: Any, name: str) -> dict[str, object]:
    opts = p.options
    query: dict[str, object] = {"name": name, "format": (opts.format if opts else "") or "wav"}
    if opts is not None:
        query.update(
            maxDurationSeconds=opts.max_duration // _NS_PER_S,
            maxSilenceSeconds=opts.max_silence // _NS_PER_S,
            ifExists=_opt(opts.exists),
            beep=opts.beep,
            terminateOn=_opt(opts.terminate),
        )
    return query


def _originate_args(c: Call) -> Args:
    r = c.payload.originate_request
    query = {
        "endpoint": r.endpoint,
        "extension": _opt(r.extension),
        "context": _opt(r.context),
        "priority": _opt(r.priority),
        "label": _opt(r.label),
        "app": _opt(r.app),
        "appArgs": _opt(r.app_args),
        "callerId": _opt(r.caller_id),
        "timeout": _opt(r.timeout),
        "otherChannelId": _opt(r.other_channel_id),
        "originator": _opt(r.originator or (c.key.id if c.key.kind == "channel" else "")),
        "formats": _opt(r.formats),
    }
    body = {"variables": r.variables} if r.variables else None
    return Args({"channelId": r.channel_id or c.generated}, query, body)


def _create_args(c: Call) -> Args:
    r = c.payload.channel_create_request
    query = {
        "endpoint": r.endpoint,
        "app": r.app or c.app,
        "appArgs": _opt(r.app_args),
        "channelId": r.channel_id or c.generated,
        "otherChannelId": _opt(r.other_channel_id),
        "originator": _opt(r.originator or (c.key.id if c.key.kind == "channel" else "")),
        "formats": _opt(r.formats),
    }
    body = {"variables": r.variables} if r.variables else None
    return Args({}, query, body)


def _external_media_args(c: Call) -> Args:
    o = c.payload.options
    query = {
        "channelId": o.channel_id or c.generated,
        "app": o.app or c.app,
        "external_host": _opt(o.external_host),
        "encapsulation": o.encapsulation or "rtp",
        "transport": o.transport or "udp",
        "connection_type": o.connection_type or "client",
        "format": o.format,
        "direction": o.direction or "both",
        "data": _opt(o.data),
        "transport_data": _opt(o.transport_data),
    }
    body = {"variables": o.variables} if o.variables else None
    return Args({}, query, body)


def _snoop_args(c: Call) -> Args:
    o = c.payload.options
    query: dict[str, object] = {"app": c.app}
    if o is not None:
        query = {
            "app": o.app or c.app,
            "appArgs": _opt(o.app_args),
            "spy": _opt(o.spy),
            "whisper": _opt(o.whisper),
        }
    return Args({"channelId": c.key.id, "snoopId": c.payload.snoop_id or c.generated}, query)


def _play_args(c: Call) -> Args:
    p = c.payload
    path_name = "bridgeId" if c.spec.entity == "bridge" else "channelId"
    query: dict[str, object] = {
        "media": p.media_uri,
        "lang": _opt(p.lang),
        "offsetms": _opt(p.offsetms),
        "skipms": _opt(p.skipms),
    }
    if getattr(p, "announcer_format", ""):
        query["announcer_format"] = p.announcer_format
    return Args({path_name: c.key.id, "playbackId": p.playback_id or c.generated}, query)


def _record_args(c: Call) -> Args:
    p = c.payload
    path_name = "bridgeId" if c.spec.entity == "bridge" else "channelId"
    query = _recording_query(p, p.name or c.generated)
    if getattr(p, "recorder_format", ""):
        query["recorder_format"] = p.recorder_format
    return Args({path_name: c.key.id}, query)


def _dtmf_args(c: Call) -> Args:
    p = c.payload
    o = p.options
    query: dict[str, object] = {"dtmf": p.dtmf}
    if o is not None:
        # Go sends milliseconds and leaves zeros out, so Asterisk's defaults apply.
        query.update(
            before=_opt(o.before // _NS_PER_MS),
            between=_opt(o.between // _NS_PER_MS),
            duration=_opt(o.duration // _NS_PER_MS),
            after=_opt(o.after // _NS_PER_MS),
        )
    return Args({"channelId": c.key.id}, query)


def _user_event_args(c: Call) -> Args:
    event = c.payload.user_event
    query = {"application": c.key.app or c.app, "source": "channel:" + c.key.id}
    variables = event.userevent if isinstance(event.userevent, dict) else None
    return Args({"eventName": event.eventname}, query, {"variables": variables or {}})


def _generic_user_event_args(c: Call) -> Args:
    p = c.payload
    query = {"application": p.application or c.key.app or c.app, "source": _opt(p.source)}
    return Args({"eventName": c.key.id}, query, {"variables": dict(p.variables)})


def _sound_args(c: Call) -> Args:
    filters = c.payload.filters if c.payload is not None else None
    filters = filters or {}
    return Args({}, {"lang": _opt(filters.get("lang")), "format": _opt(filters.get("format"))})


def _subscription_args(c: Call) -> Args:
    return Args({"applicationName": c.key.id}, {"eventSource": c.payload.event_source})


def _event_source_binding(c: Call) -> tuple[tuple[str, str], ...]:
    scheme, _, ident = c.payload.event_source.partition(":")
    kind = {"channel": "channel", "bridge": "bridge", "endpoint": "endpoint"}.get(scheme)
    if scheme == "deviceState":  # Go binds "deviceState", which no event key ever carries
        kind = "devicestate"
    return ((kind, ident),) if kind and ident else ()


def _bind(*parts: Callable[[Call], tuple[str, str]]) -> BindFn:
    return lambda c: tuple(p(c) for p in parts)


def _self(kind: str) -> Callable[[Call], tuple[str, str]]:
    return lambda c: (kind, c.key.id)


def _payload_id(kind: str, attr: str) -> Callable[[Call], tuple[str, str]]:
    return lambda c: (kind, getattr(c.payload, attr) or c.generated)


def _originate_binds(c: Call) -> tuple[tuple[str, str], ...]:
    r = c.payload.originate_request
    ids = (r.channel_id or c.generated, r.other_channel_id, r.originator)
    binds = [("channel", i) for i in ids if i]
    if c.key.kind in ("", "channel") and c.key.id:
        binds.append(("channel", c.key.id))
    return tuple(binds)


def _create_binds(c: Call) -> tuple[tuple[str, str], ...]:
    r = c.payload.channel_create_request
    return tuple(("channel", i) for i in (r.channel_id or c.generated, r.other_channel_id) if i)


def _data_wrap(entity: str) -> str:
    return f"failed to get data: Error getting data for {entity} '{{id}}': {{error}}"


# --- the table --------------------------------------------------------------------------------

_GET, _DATA, _COMMAND, _CREATE = (
    RequestClass.GET,
    RequestClass.DATA,
    RequestClass.COMMAND,
    RequestClass.CREATE,
)


def _entity_kinds(
    prefix: str,
    entity: str,
    go_name: str,
    operation: str,
    path_name: str,
    data_field: str,
    list_operation: str | None,
    list_id: str,
) -> list[KindSpec]:
    """The Data / Get / List trio most resources share."""
    args = _id(path_name)
    wrap = _data_wrap(go_name)
    rows = [
        KindSpec(
            f"{prefix}Data",
            _DATA,
            entity,
            operation=operation,
            args=args,
            reply=Reply.DATA,
            data=data_field,
            wrap=wrap,
            summary=f"Read the {go_name}'s current data.",
        ),
        KindSpec(
            f"{prefix}Get",
            _GET,
            entity,
            operation=operation,
            args=args,
            reply=Reply.KEY_REQUEST,
            wrap=wrap,
            summary=f"Check that the {go_name} exists and return its key.",
        ),
    ]
    if list_operation:
        rows.append(
            KindSpec(
                f"{prefix}List",
                _GET,
                entity,
                needs_id=False,
                operation=list_operation,
                args=lambda c: Args({}, {}),
                reply=Reply.KEYS,
                result=entity,
                result_id=list_id,
                summary=f"List every {go_name}.",
            )
        )
    return rows


def _command(
    name: str, entity: str, operation: str, path_name: str, summary: str, **kw: Any
) -> KindSpec:
    return KindSpec(
        name,
        _COMMAND,
        entity,
        operation=operation,
        args=kw.pop("args", _id(path_name)),
        summary=summary,
        **kw,
    )


_CH = "channel"
_BR = "bridge"
_CHANNEL_BIND = _bind(_self(_CH))
_BRIDGE_BIND = _bind(_self(_BR))

_ROWS: list[KindSpec] = [
    # --- applications ------------------------------------------------------------------------
    *_entity_kinds(
        "Application",
        "application",
        "application",
        "applications.get",
        "applicationName",
        "application",
        "applications.list",
        "name",
    ),
    KindSpec(
        "ApplicationSubscribe",
        _COMMAND,
        "application",
        payload="application_subscribe",
        payload_required=True,
        operation="applications.subscribe",
        args=_subscription_args,
        binds=_event_source_binding,
        wrap="Error subscribing application '{id}' for event source '{source}': {error}",
        summary="Subscribe the application to an event source.",
    ),
    KindSpec(
        "ApplicationUnsubscribe",
        _COMMAND,
        "application",
        payload="application_subscribe",
        payload_required=True,
        operation="applications.unsubscribe",
        args=_subscription_args,
        wrap="Error unsubscribing application '{id}' for event source '{source}': {error}",
        summary="Unsubscribe the application from an event source.",
    ),
    KindSpec(
        "ApplicationEventFilter",
        _COMMAND,
        "application",
        payload="application_event_filter",
        payload_required=True,
        operation="applications.filter",
        args=lambda c: Args(
            {"applicationName": c.key.id},
            {},
            {"allowed": c.payload.allowed, "disallowed": c.payload.disallowed},
        ),
        reply=Reply.DATA,
        data="application",
        go=False,
        summary="Set which event types the application receives.",
    ),
    # --- asterisk ----------------------------------------------------------------------------
    KindSpec(
        "AsteriskInfo",
        _DATA,
        needs_id=False,
        payload="asterisk_info",
        operation="asterisk.getInfo",
        args=lambda c: Args({}, {"only": _opt(list(c.payload.only)) if c.payload else None}),
        reply=Reply.DATA,
        data="asterisk",
        summary="Asterisk system information.",
    ),
    KindSpec(
        "AsteriskPing",
        _DATA,
        needs_id=False,
        operation="asterisk.ping",
        args=lambda c: Args({}, {}),
        reply=Reply.DATA,
        data="asterisk_ping",
        go=False,
        summary="Ping Asterisk.",
    ),
    KindSpec(
        "AsteriskVariableGet",
        _DATA,
        "variable",
        operation="asterisk.getGlobalVar",
        args=lambda c: Args({}, {"variable": c.key.id}),
        reply=Reply.VARIABLE,
        summary="Read a global variable.",
    ),
    KindSpec(
        "AsteriskVariableSet",
        _COMMAND,
        "variable",
        payload="asterisk_variable_set",
        payload_required=True,
        operation="asterisk.setGlobalVar",
        args=lambda c: Args({}, {"variable": c.key.id, "value": c.payload.value}),
        summary="Set a global variable.",
    ),
    KindSpec(
        "AsteriskConfigData",
        _DATA,
        "config",
        operation="asterisk.getObject",
        args=_config_args,
        reply=Reply.DATA,
        data="config",
        wrap=_data_wrap("config"),
        validate=_config_key,
        summary="Read a dynamic configuration object (key id `class/type/id`).",
    ),
    KindSpec(
        "AsteriskConfigUpdate",
        _COMMAND,
        "config",
        payload="asterisk_config",
        payload_required=True,
        operation="asterisk.updateObject",
        validate=_config_key,
        args=lambda c: _config_args(
            c, {"fields": [{"attribute": t.attribute, "value": t.value} for t in c.payload.tuples]}
        ),
        summary="Create or update a dynamic configuration object.",
    ),
    KindSpec(
        "AsteriskConfigDelete",
        _COMMAND,
        "config",
        operation="asterisk.deleteObject",
        validate=_config_key,
        args=_config_args,
        summary="Delete a dynamic configuration object.",
    ),
    KindSpec(
        "AsteriskLoggingCreate",
        _CREATE,
        "logging",
        payload="asterisk_logging_channel",
        payload_required=True,
        operation="asterisk.addLog",
        args=lambda c: Args({"logChannelName": c.key.id}, {"configuration": c.payload.levels}),
        reply=Reply.KEY_REQUEST,
        summary="Create a log channel.",
    ),
    KindSpec(
        "AsteriskLoggingData",
        _DATA,
        "logging",
        operation="asterisk.listLogChannels",
        args=lambda c: Args({}, {}),
        reply=Reply.DATA,
        data="log",
        select="channel",
        summary="Read one log channel.",
    ),
    KindSpec(
        "AsteriskLoggingGet",
        _GET,
        "logging",
        operation="asterisk.listLogChannels",
        args=lambda c: Args({}, {}),
        reply=Reply.KEY_REQUEST,
        select="channel",
        summary="Check that a log channel exists.",
    ),
    KindSpec(
        "AsteriskLoggingList",
        _GET,
        "logging",
        needs_id=False,
        operation="asterisk.listLogChannels",
        args=lambda c: Args({}, {}),
        reply=Reply.KEYS,
        result="logging",
        result_id="channel",
        summary="List log channels.",
    ),
    _command(
        "AsteriskLoggingRotate",
        "logging",
        "asterisk.rotateLog",
        "logChannelName",
        "Rotate a log channel.",
    ),
    _command(
        "AsteriskLoggingDelete",
        "logging",
        "asterisk.deleteLog",
        "logChannelName",
        "Delete a log channel.",
    ),
    *_entity_kinds(
        "AsteriskModule",
        "module",
        "module",
        "asterisk.getModule",
        "moduleName",
        "module",
        "asterisk.listModules",
        "name",
    ),
    _command("AsteriskModuleLoad", "module", "asterisk.loadModule", "moduleName", "Load a module."),
    _command(
        "AsteriskModuleReload", "module", "asterisk.reloadModule", "moduleName", "Reload a module."
    ),
    _command(
        "AsteriskModuleUnload", "module", "asterisk.unloadModule", "moduleName", "Unload a module."
    ),
    # --- bridges -----------------------------------------------------------------------------
    KindSpec(
        "BridgeCreate",
        _CREATE,
        _BR,
        needs_id=False,
        payload="bridge_create",
        operation="bridges.createWithId",
        args=lambda c: Args(
            {"bridgeId": c.key.id or c.generated},
            {
                "type": _opt(c.payload.type) if c.payload else None,
                "name": _opt(c.payload.name) if c.payload else None,
            },
            {"variables": c.payload.variables} if c.payload and c.payload.variables else None,
        ),
        reply=Reply.KEY_REQUEST,
        generate=("key", "br"),
        binds=lambda c: ((_BR, c.key.id or c.generated),),
        summary="Create a bridge (an empty key ID gets a generated one).",
    ),
    KindSpec(
        "BridgeStageCreate",
        _CREATE,
        _BR,
        needs_id=False,
        payload="bridge_create",
        reply=Reply.KEY_REQUEST,
        generate=("key", "br"),
        binds=lambda c: ((_BR, c.key.id or c.generated),),
        summary="Reserve a bridge ID on one node; BridgeCreate executes it.",
    ),
    *_entity_kinds(
        "Bridge", _BR, "bridge", "bridges.get", "bridgeId", "bridge", "bridges.list", "id"
    ),
    _command(
        "BridgeDelete", _BR, "bridges.destroy", "bridgeId", "Destroy a bridge.", binds=_BRIDGE_BIND
    ),
    KindSpec(
        "BridgeAddChannel",
        _COMMAND,
        _BR,
        payload="bridge_add_channel",
        payload_required=True,
        operation="bridges.addChannel",
        args=lambda c: Args(
            {"bridgeId": c.key.id},
            {
                "channel": c.payload.channel,
                "role": _opt(c.payload.role),
                "absorbDTMF": c.payload.absorb_dtmf or None,
                "mute": c.payload.mute or None,
                "inhibitConnectedLineUpdates": c.payload.inhibit_connected_line_updates or None,
            },
        ),
        binds=lambda c: ((_BR, c.key.id), (_CH, c.payload.channel)),
        summary="Add a channel to a bridge.",
    ),
    KindSpec(
        "BridgeRemoveChannel",
        _COMMAND,
        _BR,
        payload="bridge_remove_channel",
        payload_required=True,
        operation="bridges.removeChannel",
        args=lambda c: Args({"bridgeId": c.key.id}, {"channel": c.payload.channel}),
        binds=lambda c: ((_BR, c.key.id), (_CH, c.payload.channel)),
        summary="Remove a channel from a bridge.",
    ),
    KindSpec(
        "BridgeMOH",
        _COMMAND,
        _BR,
        payload="bridge_moh",
        payload_required=True,
        operation="bridges.startMoh",
        args=lambda c: Args({"bridgeId": c.key.id}, {"mohClass": _opt(c.payload.moh_class)}),
        binds=_BRIDGE_BIND,
        summary="Play music on hold to a bridge.",
    ),
    _command(
        "BridgeStopMOH",
        _BR,
        "bridges.stopMoh",
        "bridgeId",
        "Stop music on hold.",
        binds=_BRIDGE_BIND,
    ),
    KindSpec(
        "BridgePlay",
        _CREATE,
        _BR,
        payload="bridge_play",
        payload_required=True,
        operation="bridges.playWithId",
        args=_play_args,
        reply=Reply.KEY_RESULT,
        result="playback",
        result_id=lambda c: c.payload.playback_id or c.generated,
        generate=("playback_id", "pb"),
        binds=_bind(_self(_BR), _payload_id("playback", "playback_id")),
        summary="Play media to a bridge.",
    ),
    KindSpec(
        "BridgeStagePlay",
        _GET,
        _BR,
        payload="bridge_play",
        payload_required=True,
        check="bridges.get",
        reply=Reply.KEY_RESULT,
        result="playback",
        result_id=lambda c: c.payload.playback_id or c.generated,
        generate=("playback_id", "pb"),
        binds=_bind(_self(_BR), _payload_id("playback", "playback_id")),
        wrap=_data_wrap("bridge"),
        summary="Reserve a playback ID; BridgePlay executes it.",
    ),
    KindSpec(
        "BridgeRecord",
        _CREATE,
        _BR,
        payload="bridge_record",
        payload_required=True,
        check="bridges.get",
        operation="bridges.record",
        args=_record_args,
        reply=Reply.KEY_RESULT,
        result="liverecording",
        result_id=lambda c: c.payload.name or c.generated,
        generate=("name", "rc"),
        binds=_bind(_self(_BR), _payload_id("liverecording", "name")),
        wrap=_data_wrap("bridge"),
        summary="Record a bridge.",
    ),
    KindSpec(
        "BridgeStageRecord",
        _GET,
        _BR,
        payload="bridge_record",
        payload_required=True,
        check="bridges.get",
        reply=Reply.KEY_REQUEST,
        result="liverecording",
        result_id=lambda c: c.payload.name or c.generated,
        generate=("name", "rc"),
        binds=_bind(_self(_BR), _payload_id("liverecording", "name")),
        wrap=_data_wrap("bridge"),
        summary="Reserve a recording name; BridgeRecord executes it.",
    ),
    KindSpec(
        "BridgeSubscribe",
        _COMMAND,
        _BR,
        binds=_BRIDGE_BIND,
        summary="Route the bridge's events to the key's dialog.",
    ),
    KindSpec("BridgeUnsubscribe", _COMMAND, _BR, summary="No-op (kept for Go peers)."),
    KindSpec(
        "BridgeVideoSource",
        _COMMAND,
        _BR,
        payload="bridge_video_source",
        payload_required=True,
        operation="bridges.setVideoSource",
        args=lambda c: Args({"bridgeId": c.key.id, "channelId": c.payload.channel}, {}),
        binds=lambda c: ((_BR, c.key.id), (_CH, c.payload.channel)),
        summary="Set a bridge's video source.",
    ),
    _command(
        "BridgeVideoSourceDelete",
        _BR,
        "bridges.clearVideoSource",
        "bridgeId",
        "Clear a bridge's video source.",
        binds=_BRIDGE_BIND,
    ),
    KindSpec(
        "BridgeVariableGet",
        _DATA,
        _BR,
        payload="bridge_variable",
        payload_required=True,
        operation="bridges.getBridgeVar",
        args=lambda c: Args({"bridgeId": c.key.id}, {"variable": c.payload.name}),
        reply=Reply.VARIABLE,
        go=False,
        summary="Read a bridge variable.",
    ),
    KindSpec(
        "BridgeVariableSet",
        _COMMAND,
        _BR,
        payload="bridge_variable",
        payload_required=True,
        operation="bridges.setBridgeVar",
        args=lambda c: Args(
            {"bridgeId": c.key.id},
            {
                "variable": c.payload.name,
                "value": c.payload.value,
                "report_events": c.payload.report_events or None,
            },
        ),
        go=False,
        summary="Set a bridge variable.",
    ),
    KindSpec(
        "BridgeVariablesGet",
        _DATA,
        _BR,
        payload="variables",
        payload_required=True,
        operation="bridges.getBridgeVars",
        args=lambda c: Args({"bridgeId": c.key.id}, {"variables": list(c.payload.names)}),
        reply=Reply.DATA,
        data="variables",
        go=False,
        summary="Read several bridge variables.",
    ),
    KindSpec(
        "BridgeVariablesSet",
        _COMMAND,
        _BR,
        payload="variables",
        payload_required=True,
        operation="bridges.setBridgeVars",
        args=lambda c: Args({"bridgeId": c.key.id}, {}, {"variables": dict(c.payload.values)}),
        go=False,
        summary="Set several bridge variables.",
    ),
    # --- channels ----------------------------------------------------------------------------
    _command(
        "ChannelAnswer",
        _CH,
        "channels.answer",
        "channelId",
        "Answer a channel.",
        binds=_CHANNEL_BIND,
    ),
    _command(
        "ChannelBusy",
        _CH,
        "channels.hangup",
        "channelId",
        "Hang up with cause busy.",
        args=lambda c: Args({"channelId": c.key.id}, {"reason": "busy"}),
        binds=_CHANNEL_BIND,
    ),
    _command(
        "ChannelCongestion",
        _CH,
        "channels.hangup",
        "channelId",
        "Hang up with cause congestion.",
        args=lambda c: Args({"channelId": c.key.id}, {"reason": "congestion"}),
        binds=_CHANNEL_BIND,
    ),
    KindSpec(
        "ChannelCreate",
        _CREATE,
        _CH,
        needs_id=False,
        payload="channel_create",
        payload_required=True,
        operation="channels.create",
        args=_create_args,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.channel_create_request.channel_id or c.generated,
        generate=("channel_create_request.channel_id", "ch"),
        binds=_create_binds,
        summary="Create a channel without dialing it.",
    ),
    KindSpec(
        "ChannelContinue",
        _COMMAND,
        _CH,
        payload="channel_continue",
        payload_required=True,
        operation="channels.continueInDialplan",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {
                "context": _opt(c.payload.context),
                "extension": _opt(c.payload.extension),
                "priority": _opt(c.payload.priority),
                "label": _opt(c.payload.label),
            },
        ),
        summary="Leave Stasis and continue in the dialplan.",
    ),
    *_entity_kinds(
        "Channel", _CH, "channel", "channels.get", "channelId", "channel", "channels.list", "id"
    ),
    KindSpec(
        "ChannelDial",
        _COMMAND,
        _CH,
        payload="channel_dial",
        payload_required=True,
        operation="channels.dial",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {"caller": _opt(c.payload.caller), "timeout": _opt(c.payload.timeout // _NS_PER_S)},
        ),
        summary="Dial a created channel.",
    ),
    KindSpec(
        "ChannelHangup",
        _COMMAND,
        _CH,
        payload="channel_hangup",
        operation="channels.hangup",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {
                "reason_code": _opt(c.payload.reason_code) if c.payload else None,
                "reason": None
                if c.payload and c.payload.reason_code
                else (c.payload.reason if c.payload and c.payload.reason else "normal"),
            },
        ),
        summary="Hang up a channel.",
    ),
    _command("ChannelHold", _CH, "channels.hold", "channelId", "Put a channel on hold."),
    KindSpec(
        "ChannelMOH",
        _COMMAND,
        _CH,
        payload="channel_moh",
        payload_required=True,
        operation="channels.startMoh",
        args=lambda c: Args({"channelId": c.key.id}, {"mohClass": _opt(c.payload.music)}),
        summary="Play music on hold to a channel.",
    ),
    KindSpec(
        "ChannelMute",
        _COMMAND,
        _CH,
        payload="channel_mute",
        operation="channels.mute",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {"direction": (c.payload.direction if c.payload else "") or "both"},
        ),
        summary="Mute a channel.",
    ),
    KindSpec(
        "ChannelOriginate",
        _CREATE,
        _CH,
        needs_id=False,
        payload="channel_originate",
        payload_required=True,
        operation="channels.originateWithId",
        args=_originate_args,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.originate_request.channel_id or c.generated,
        generate=("originate_request.channel_id", "ch"),
        binds=_originate_binds,
        summary="Originate a call.",
    ),
    KindSpec(
        "ChannelStageOriginate",
        _CREATE,
        _CH,
        needs_id=False,
        payload="channel_originate",
        payload_required=True,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.originate_request.channel_id or c.generated,
        generate=("originate_request.channel_id", "ch"),
        binds=_originate_binds,
        summary="Reserve a channel ID on one node; ChannelOriginate executes it.",
    ),
    KindSpec(
        "ChannelPlay",
        _CREATE,
        _CH,
        payload="channel_play",
        payload_required=True,
        check="channels.get",
        operation="channels.playWithId",
        args=_play_args,
        reply=Reply.KEY_RESULT,
        result="playback",
        result_id=lambda c: c.payload.playback_id or c.generated,
        generate=("playback_id", "pb"),
        binds=_bind(_self(_CH), _payload_id("playback", "playback_id")),
        wrap=_data_wrap("channel"),
        summary="Play media to a channel.",
    ),
    KindSpec(
        "ChannelStagePlay",
        _GET,
        _CH,
        payload="channel_play",
        payload_required=True,
        check="channels.get",
        reply=Reply.KEY_RESULT,
        result="playback",
        result_id=lambda c: c.payload.playback_id or c.generated,
        generate=("playback_id", "pb"),
        binds=_bind(_self(_CH), _payload_id("playback", "playback_id")),
        wrap=_data_wrap("channel"),
        summary="Reserve a playback ID; ChannelPlay executes it.",
    ),
    KindSpec(
        "ChannelRecord",
        _CREATE,
        _CH,
        payload="channel_record",
        payload_required=True,
        operation="channels.record",
        args=_record_args,
        reply=Reply.KEY_RESULT,
        result="liverecording",
        result_id=lambda c: c.payload.name or c.generated,
        generate=("name", "rc"),
        binds=_bind(_self(_CH), _payload_id("liverecording", "name")),
        summary="Record a channel.",
    ),
    KindSpec(
        "ChannelStageRecord",
        _GET,
        _CH,
        payload="channel_record",
        payload_required=True,
        check="channels.get",
        reply=Reply.KEY_REQUEST,
        result="liverecording",
        result_id=lambda c: c.payload.name or c.generated,
        generate=("name", "rc"),
        binds=_bind(_self(_CH), _payload_id("liverecording", "name")),
        wrap=_data_wrap("channel"),
        summary="Reserve a recording name; ChannelRecord executes it.",
    ),
    _command("ChannelRing", _CH, "channels.ring", "channelId", "Indicate ringing."),
    KindSpec(
        "ChannelSendDTMF",
        _COMMAND,
        _CH,
        payload="channel_send_dtmf",
        payload_required=True,
        operation="channels.sendDTMF",
        args=_dtmf_args,
        summary="Send DTMF to a channel.",
    ),
    _command("ChannelSilence", _CH, "channels.startSilence", "channelId", "Play silence."),
    KindSpec(
        "ChannelSnoop",
        _CREATE,
        _CH,
        payload="channel_snoop",
        payload_required=True,
        operation="channels.snoopChannelWithId",
        args=_snoop_args,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.snoop_id or c.generated,
        generate=("snoop_id", "sn"),
        binds=_bind(_payload_id(_CH, "snoop_id")),
        summary="Snoop (spy or whisper) on a channel.",
    ),
    KindSpec(
        "ChannelStageSnoop",
        _GET,
        _CH,
        payload="channel_snoop",
        payload_required=True,
        check="channels.get",
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.snoop_id or c.generated,
        generate=("snoop_id", "sn"),
        binds=_bind(_payload_id(_CH, "snoop_id")),
        wrap=_data_wrap("channel"),
        summary="Reserve a snoop channel ID; ChannelSnoop executes it.",
    ),
    KindSpec(
        "ChannelExternalMedia",
        _CREATE,
        _CH,
        needs_id=False,
        payload="channel_external_media",
        payload_required=True,
        operation="channels.externalMedia",
        args=_external_media_args,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.options.channel_id or c.generated,
        generate=("options.channel_id", "ch"),
        binds=lambda c: ((_CH, c.payload.options.channel_id or c.generated),),
        validate=_external_media,
        summary="Create an external media channel.",
    ),
    KindSpec(
        "ChannelStageExternalMedia",
        _CREATE,
        _CH,
        needs_id=False,
        payload="channel_external_media",
        payload_required=True,
        reply=Reply.KEY_RESULT,
        result=_CH,
        result_id=lambda c: c.payload.options.channel_id or c.generated,
        generate=("options.channel_id", "ch"),
        binds=lambda c: ((_CH, c.payload.options.channel_id or c.generated),),
        validate=_external_media,
        summary="Validate and reserve an external media channel ID.",
    ),
    _command("ChannelStopHold", _CH, "channels.unhold", "channelId", "Take a channel off hold."),
    _command("ChannelStopMOH", _CH, "channels.stopMoh", "channelId", "Stop music on hold."),
    _command("ChannelStopRing", _CH, "channels.ringStop", "channelId", "Stop ringing."),
    _command("ChannelStopSilence", _CH, "channels.stopSilence", "channelId", "Stop silence."),
    KindSpec(
        "ChannelSubscribe",
        _COMMAND,
        _CH,
        binds=_CHANNEL_BIND,
        summary="Route the channel's events to the key's dialog.",
    ),
    KindSpec(
        "ChannelUnmute",
        _COMMAND,
        _CH,
        payload="channel_mute",
        operation="channels.unmute",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {"direction": (c.payload.direction if c.payload else "") or "both"},
        ),
        summary="Unmute a channel.",
    ),
    KindSpec(
        "ChannelVariableGet",
        _DATA,
        _CH,
        payload="channel_variable",
        payload_required=True,
        operation="channels.getChannelVar",
        args=lambda c: Args({"channelId": c.key.id}, {"variable": c.payload.name}),
        reply=Reply.VARIABLE,
        summary="Read a channel variable.",
    ),
    KindSpec(
        "ChannelVariableSet",
        _COMMAND,
        _CH,
        payload="channel_variable",
        payload_required=True,
        operation="channels.setChannelVar",
        args=lambda c: Args(
            {"channelId": c.key.id},
            {
                "variable": c.payload.name,
                "value": c.payload.value,
                "report_events": c.payload.report_events or None,
            },
        ),
        summary="Set a channel variable.",
    ),
    KindSpec(
        "ChannelVariablesGet",
        _DATA,
        _CH,
        payload="variables",
        payload_required=True,
        operation="channels.getChannelVars",
        args=lambda c: Args({"channelId": c.key.id}, {"variables": list(c.payload.names)}),
        reply=Reply.DATA,
        data="variables",
        go=False,
        summary="Read several channel variables.",
    ),
    KindSpec(
        "ChannelVariablesSet",
        _COMMAND,
        _CH,
        payload="variables",
        payload_required=True,
        operation="channels.setChannelVars",
        args=lambda c: Args({"channelId": c.key.id}, {}, {"variables": dict(c.payload.values)}),
        go=False,
        summary="Set several channel variables.",
    ),
    KindSpec(
        "ChannelUserEvent",
        _COMMAND,
        _CH,
        payload="channel_user_event",
        payload_required=True,
        operation="events.userEvent",
        args=_user_event_args,
        summary="Raise a user event with the channel as source.",
    ),
    KindSpec(
        "ChannelMove",
        _COMMAND,
        _CH,
        payload="channel_move",
        payload_required=True,
        operation="channels.move",
        args=lambda c: Args(
            {"channelId": c.key.id}, {"app": c.payload.app, "appArgs": _opt(c.payload.app_args)}
        ),
        go=False,
        summary="Move a channel to another Stasis application.",
    ),
    KindSpec(
        "ChannelRedirect",
        _COMMAND,
        _CH,
        payload="channel_redirect",
        payload_required=True,
        operation="channels.redirect",
        args=lambda c: Args({"channelId": c.key.id}, {"endpoint": c.payload.endpoint}),
        go=False,
        summary="Redirect a channel to another endpoint.",
    ),
    _command(
        "ChannelProgress", _CH, "channels.progress", "channelId", "Indicate progress.", go=False
    ),
    KindSpec(
        "ChannelRTPStatistics",
        _DATA,
        _CH,
        operation="channels.rtpstatistics",
        args=_id("channelId"),
        reply=Reply.DATA,
        data="rtp_statistics",
        go=False,
        summary="RTP statistics of a channel.",
    ),
    KindSpec(
        "ChannelTransferProgress",
        _COMMAND,
        _CH,
        payload="channel_transfer_progress",
        payload_required=True,
        operation="channels.transfer_progress",
        args=lambda c: Args({"channelId": c.key.id}, {"states": c.payload.states}),
        go=False,
        summary="Report the progress of a transfer.",
    ),
    # --- device states -----------------------------------------------------------------------
    *_entity_kinds(
        "DeviceState",
        "devicestate",
        "deviceState",
        "deviceStates.get",
        "deviceName",
        "device_state",
        "deviceStates.list",
        "name",
    ),
    KindSpec(
        "DeviceStateUpdate",
        _COMMAND,
        "devicestate",
        payload="device_state_update",
        payload_required=True,
        operation="deviceStates.update",
        args=lambda c: Args({"deviceName": c.key.id}, {"deviceState": c.payload.state}),
        summary="Set a Stasis device state.",
    ),
    _command(
        "DeviceStateDelete",
        "devicestate",
        "deviceStates.delete",
        "deviceName",
        "Delete a Stasis device state.",
    ),
    # --- endpoints ---------------------------------------------------------------------------
    KindSpec(
        "EndpointData",
        _DATA,
        "endpoint",
        operation="endpoints.get",
        args=_endpoint_args,
        reply=Reply.DATA,
        data="endpoint",
        wrap=_data_wrap("endpoint"),
        validate=_endpoint_key,
        summary="Read an endpoint (key id `tech/resource`).",
    ),
    KindSpec(
        "EndpointGet",
        _GET,
        "endpoint",
        operation="endpoints.get",
        args=_endpoint_args,
        reply=Reply.KEY_REQUEST,
        wrap=_data_wrap("endpoint"),
        validate=_endpoint_key,
        summary="Check that an endpoint exists.",
    ),
    KindSpec(
        "EndpointList",
        _GET,
        "endpoint",
        needs_id=False,
        operation="endpoints.list",
        args=lambda c: Args({}, {}),
        reply=Reply.KEYS,
        result="endpoint",
        result_id="technology/resource",
        summary="List endpoints.",
    ),
    KindSpec(
        "EndpointListByTech",
        _GET,
        "endpoint",
        needs_id=False,
        payload="endpoint_list_by_tech",
        payload_required=True,
        operation="endpoints.listByTech",
        args=lambda c: Args({"tech": c.payload.tech}, {}),
        reply=Reply.KEYS,
        result="endpoint",
        result_id="technology/resource",
        filter_by_key=True,
        summary="List the endpoints of one technology.",
    ),
    KindSpec(
        "EndpointSendMessage",
        _COMMAND,
        "endpoint",
        needs_id=False,
        payload="endpoint_send_message",
        payload_required=True,
        operation="endpoints.sendMessage",
        args=lambda c: Args(
            {},
            {"to": c.payload.to, "from": c.payload.from_, "body": _opt(c.payload.body)},
            {"variables": dict(c.payload.variables)} if c.payload.variables else None,
        ),
        go=False,
        summary="Send a text message.",
    ),
    KindSpec(
        "EndpointRefer",
        _COMMAND,
        "endpoint",
        needs_id=False,
        payload="endpoint_refer",
        payload_required=True,
        operation="endpoints.refer",
        args=lambda c: Args(
            {},
            {
                "to": c.payload.to,
                "from": c.payload.from_,
                "refer_to": c.payload.refer_to,
                "to_self": c.payload.to_self or None,
            },
            {"variables": dict(c.payload.variables)} if c.payload.variables else None,
        ),
        go=False,
        summary="Send a REFER.",
    ),
    KindSpec(
        "EndpointSendMessageToEndpoint",
        _COMMAND,
        "endpoint",
        payload="endpoint_send_message",
        payload_required=True,
        operation="endpoints.sendMessageToEndpoint",
        args=lambda c: Args(
            _endpoint_args(c).path,
            {"from": c.payload.from_, "body": _opt(c.payload.body)},
            {"variables": dict(c.payload.variables)} if c.payload.variables else None,
        ),
        validate=_endpoint_key,
        go=False,
        summary="Send a text message to one endpoint (key id `tech/resource`).",
    ),
    KindSpec(
        "EndpointReferToEndpoint",
        _COMMAND,
        "endpoint",
        payload="endpoint_refer",
        payload_required=True,
        operation="endpoints.referToEndpoint",
        args=lambda c: Args(
            _endpoint_args(c).path,
            {
                "from": c.payload.from_,
                "refer_to": c.payload.refer_to,
                "to_self": c.payload.to_self or None,
            },
            {"variables": dict(c.payload.variables)} if c.payload.variables else None,
        ),
        validate=_endpoint_key,
        go=False,
        summary="Send a REFER to one endpoint (key id `tech/resource`).",
    ),
    # --- events ------------------------------------------------------------------------------
    KindSpec(
        "UserEvent",
        _COMMAND,
        "userevent",
        payload="user_event",
        payload_required=True,
        operation="events.userEvent",
        args=_generic_user_event_args,
        go=False,
        summary="Raise a user event (key id = event name) with any sources.",
    ),
    KindSpec(
        "ChannelClaim",
        _COMMAND,
        _CH,
        payload="channel_claim",
        payload_required=True,
        operation="events.claimChannel",
        args=lambda c: Args({}, {"channelId": c.key.id, "application": c.payload.application}),
        go=False,
        summary="Claim a broadcast channel for an application.",
    ),
    # --- mailboxes ---------------------------------------------------------------------------
    *_entity_kinds(
        "Mailbox",
        "mailbox",
        "mailbox",
        "mailboxes.get",
        "mailboxName",
        "mailbox",
        "mailboxes.list",
        "name",
    ),
    KindSpec(
        "MailboxUpdate",
        _COMMAND,
        "mailbox",
        payload="mailbox_update",
        payload_required=True,
        operation="mailboxes.update",
        args=lambda c: Args(
            {"mailboxName": c.key.id},
            {"oldMessages": c.payload.old, "newMessages": c.payload.new},
        ),
        summary="Set a mailbox's message counts.",
    ),
    _command("MailboxDelete", "mailbox", "mailboxes.delete", "mailboxName", "Delete a mailbox."),
    # --- playbacks ---------------------------------------------------------------------------
    KindSpec(
        "PlaybackControl",
        _COMMAND,
        "playback",
        payload="playback_control",
        payload_required=True,
        operation="playbacks.control",
        args=lambda c: Args({"playbackId": c.key.id}, {"operation": c.payload.command}),
        summary="Pause, unpause, restart, reverse or forward a playback.",
    ),
    *_entity_kinds(
        "Playback", "playback", "playback", "playbacks.get", "playbackId", "playback", None, "id"
    ),
    _command("PlaybackStop", "playback", "playbacks.stop", "playbackId", "Stop a playback."),
    KindSpec(
        "PlaybackSubscribe",
        _COMMAND,
        "playback",
        binds=_bind(_self("playback")),
        summary="Route the playback's events to the key's dialog.",
    ),
    # --- recordings --------------------------------------------------------------------------
    KindSpec(
        "RecordingStoredCopy",
        _COMMAND,
        "storedrecording",
        payload="recording_stored_copy",
        payload_required=True,
        operation="recordings.copyStored",
        args=lambda c: Args(
            {"recordingName": c.key.id}, {"destinationRecordingName": c.payload.destination}
        ),
        reply=Reply.KEY_RESULT,
        result="storedrecording",
        result_id=lambda c: c.payload.destination,
        summary="Copy a stored recording.",
    ),
    *_entity_kinds(
        "RecordingStored",
        "storedrecording",
        "storedRecording",
        "recordings.getStored",
        "recordingName",
        "stored_recording",
        "recordings.listStored",
        "name",
    ),
    _command(
        "RecordingStoredDelete",
        "storedrecording",
        "recordings.deleteStored",
        "recordingName",
        "Delete a stored recording.",
    ),
    KindSpec(
        "RecordingStoredFile",
        _DATA,
        "storedrecording",
        operation="recordings.getStoredFile",
        args=_id("recordingName"),
        reply=Reply.DATA,
        data="file",
        go=False,
        summary="Download a stored recording's file (streamed).",
    ),
    *_entity_kinds(
        "RecordingLive",
        "liverecording",
        "liveRecording",
        "recordings.getLive",
        "recordingName",
        "live_recording",
        None,
        "name",
    ),
    _command(
        "RecordingLiveMute",
        "liverecording",
        "recordings.mute",
        "recordingName",
        "Mute a live recording.",
    ),
    _command(
        "RecordingLivePause",
        "liverecording",
        "recordings.pause",
        "recordingName",
        "Pause a live recording.",
    ),
    _command(
        "RecordingLiveResume",
        "liverecording",
        "recordings.unpause",
        "recordingName",
        "Resume a paused live recording.",
    ),
    _command(
        "RecordingLiveScrap",
        "liverecording",
        "recordings.cancel",
        "recordingName",
        "Stop a live recording and discard it.",
    ),
    _command(
        "RecordingLiveStop",
        "liverecording",
        "recordings.stop",
        "recordingName",
        "Stop a live recording and store it.",
    ),
    KindSpec(
        "RecordingLiveSubscribe",
        _COMMAND,
        "liverecording",
        binds=_bind(_self("liverecording")),
        summary="Route the recording's events to the key's dialog.",
    ),
    _command(
        "RecordingLiveUnmute",
        "liverecording",
        "recordings.unmute",
        "recordingName",
        "Unmute a live recording.",
    ),
    # --- sounds ------------------------------------------------------------------------------
    KindSpec(
        "SoundData",
        _DATA,
        "sound",
        operation="sounds.get",
        args=_id("soundId"),
        reply=Reply.DATA,
        data="sound",
        wrap=_data_wrap("sound"),
        summary="Read a sound.",
    ),
    KindSpec(
        "SoundList",
        _GET,
        "sound",
        needs_id=False,
        payload="sound_list",
        operation="sounds.list",
        args=_sound_args,
        reply=Reply.KEYS,
        result="sound",
        result_id="id",
        filter_by_key=True,
        summary="List sounds, by language and format.",
    ),
]

KINDS: Final[Mapping[str, KindSpec]] = MappingProxyType({row.name: row for row in _ROWS})
"""Every request kind by name: the 111 of Go ari-proxy v5 and ours."""

if len(KINDS) != len(_ROWS):  # pragma: no cover - a duplicated row is a programming error
    raise RuntimeError("duplicate kind in the table")
