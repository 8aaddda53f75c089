"""The request kinds: one row per kind, driving the server, both clients, the docs and the tests.

A row says which subject class carries the kind, which payload field it reads, which ARI
operation it runs and how key and payload become that operation's parameters, what the reply
holds, and which dialog bindings it creates. Nothing here does I/O: `ari_proxy.ari._executor`
interprets the rows against a live Asterisk, the server puts the result on the bus, and the proxy
client decodes it.

A row writes only what is particular to its kind; `_kind` derives the rest from the kind's name
and from the generated ARI operation table (`ari_proxy.spec.OPERATIONS`): the entity from the
name's prefix, subject class and reply from its suffix, path parameter names from the operation,
the data field from the operation's response model, and Go's error wording of entity reads.
`_Stage` derives each `...Stage...` kind from the kind it stages. `tests/api/test_api_kinds.py`
checks the derived facts against the operations.

The 111 kinds of the Go reference keep their names, classes, payloads and replies (the tables
of docs/protocol.md, generated from this one). ARI operations Go never mapped get kinds of our
own (`go=False`), whose payloads are extensions Go peers ignore.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple, cast

from .._exceptions import InvalidRequestError
from ..spec import OPERATIONS, Operation, check_path, check_query, control_character
from ._key import EntityKind, Key
from ._kind_names import KindName
from ._messages import EntityData
from ._subjects import RequestClass

__all__ = [
    "KINDS",
    "Args",
    "Invocation",
    "KindSpec",
    "Reply",
    "Retry",
    "check_request",
    "split_config_id",
    "split_endpoint_id",
]


class Retry(enum.Enum):
    """Whether a client may send a request again after it timed out (docs/protocol.md,
    "Retries"): the first attempt may have run, its reply lost."""

    SAFE = "safe"
    """Running it twice does what running it once does: reads, bindings, idempotent settings."""
    BY_ID = "by_id"
    """A create whose ID the client chose: a second run finds the entity there, and Asterisk's
    "already exists" (409) after the client's own retry is the success it was."""
    NEVER = "never"
    """Running it twice does it twice (a DTMF, a hang-up cause, a dial): never retried."""


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
class Invocation:
    """One request being executed: its kind's row, key and payload, and who executes it.

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


ArgsFn = Callable[[Invocation], Args]
CheckFn = Callable[[Invocation], str | None]
IdFn = Callable[[Invocation], str]
BindFn = Callable[[Invocation], tuple[tuple[str, str], ...]]
PathFn = Callable[[Invocation], tuple[str, ...]]
QueryFn = Callable[[Invocation], Mapping[str, object]]
BodyFn = Callable[[Invocation], object]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One request kind.

    Attributes:
        name: the kind on the wire, e.g. `ChannelAnswer`.
        cls: subject class the clients use for it.
        entity: the `EntityKind` value (a plain `str`, as `Key.kind`) the request key names,
            e.g. `channel`; `""` when the key names nothing.
        needs_id: whether the key must carry an ID (otherwise `"<entity> key not supplied"`).
        payload: the `Request` attribute holding the payload, or None.
        payload_required: whether a request without the payload is refused.
        operation: the ARI operation (`channels.answer`); None when no ARI call is made.
        args: builds the operation's parameters from the invocation.
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

    name: KindName
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

    @property
    def retry(self) -> Retry:
        """Whether a client may send this kind again after a timeout (see `Retry`)."""
        if self.cls in (RequestClass.GET, RequestClass.DATA) or self.operation is None:
            return Retry.SAFE  # reads, and bindings made without asking Asterisk
        if self.generate is not None:
            return Retry.BY_ID
        return Retry.SAFE if self.name in _IDEMPOTENT_COMMANDS else Retry.NEVER


# Commands that leave the same state however often they run (the rest are never retried).
_IDEMPOTENT_COMMANDS: Final = frozenset(
    {
        "ApplicationEventFilter",
        "ApplicationSubscribe",
        "ApplicationUnsubscribe",
        "AsteriskVariableSet",
        "BridgeMOH",
        "BridgeStopMOH",
        "BridgeVariableSet",
        "BridgeVariablesSet",
        "BridgeVideoSource",
        "BridgeVideoSourceDelete",
        "ChannelAnswer",
        "ChannelHold",
        "ChannelMOH",
        "ChannelMute",
        "ChannelRing",
        "ChannelSilence",
        "ChannelStopHold",
        "ChannelStopMOH",
        "ChannelStopRing",
        "ChannelStopSilence",
        "ChannelUnmute",
        "ChannelVariableSet",
        "ChannelVariablesSet",
        "DeviceStateUpdate",
    }
)

# --- deriving a row from its name and operation ----------------------------------------------

_GET, _DATA, _COMMAND, _CREATE = (
    RequestClass.GET,
    RequestClass.DATA,
    RequestClass.COMMAND,
    RequestClass.CREATE,
)

# The entity a kind's key names, by the prefix of the kind's name (the first match wins).
_ENTITIES: Final[tuple[tuple[str, str], ...]] = (
    ("AsteriskConfig", EntityKind.CONFIG),
    ("AsteriskLogging", EntityKind.LOGGING),
    ("AsteriskModule", EntityKind.MODULE),
    ("AsteriskVariable", EntityKind.VARIABLE),
    ("Asterisk", ""),  # AsteriskInfo, AsteriskPing: the key names nothing
    ("Application", EntityKind.APPLICATION),
    ("Bridge", EntityKind.BRIDGE),
    ("Channel", EntityKind.CHANNEL),
    ("DeviceState", EntityKind.DEVICE_STATE),
    ("Endpoint", EntityKind.ENDPOINT),
    ("Listen", EntityKind.CHANNEL),  # the offered call's channel (take, state, release)
    ("Mailbox", EntityKind.MAILBOX),
    ("Playback", EntityKind.PLAYBACK),
    ("RecordingLive", EntityKind.LIVE_RECORDING),
    ("RecordingStored", EntityKind.STORED_RECORDING),
    ("Sound", EntityKind.SOUND),
    # Our UserEvent's key ID is the event name. Go has no such key kind, so it is no EntityKind;
    # the value shows only in "userevent key not supplied".
    ("UserEvent", "userevent"),
)

# Go's error texts spell these entities in camel case ("Error getting data for deviceState").
_GO_SPELLING: Final = {
    EntityKind.DEVICE_STATE.value: "deviceState",
    EntityKind.LIVE_RECORDING.value: "liveRecording",
    EntityKind.STORED_RECORDING.value: "storedRecording",
}

# Subject class and reply by the suffix of the kind's name (the first match wins); Go's table
# follows this without exception. `_class_and_reply` says what a kind matching none gets.
_BY_SUFFIX: Final[tuple[tuple[str, RequestClass, Reply], ...]] = (
    ("VariablesGet", _DATA, Reply.DATA),  # ours: Asterisk's object of several variables
    ("VariableGet", _DATA, Reply.VARIABLE),
    ("ListByTech", _GET, Reply.KEYS),
    ("List", _GET, Reply.KEYS),
    ("Data", _DATA, Reply.DATA),
    ("Get", _GET, Reply.KEY_REQUEST),
    # The create subject, where one server of the queue group takes each request.
    *((verb, _CREATE, Reply.KEY_REQUEST) for verb in ("Create", "Originate", "ExternalMedia")),
    *((verb, _CREATE, Reply.KEY_REQUEST) for verb in ("Play", "Record", "Snoop")),
)

# Reads of one entity by its ID (an ARI path parameter) word their errors as Go's data
# functions do: "failed to get data: Error getting data for channel '<id>': <error>".
_READS_BY_ID: Final = ("Data", "Get")

_DATA_FIELDS: Final = frozenset(EntityData.__struct_fields__)


def _entity_of(name: str) -> str:
    """The entity kind (a plain `str`, as `Key.kind` holds) a kind's name starts with."""
    return next(str(entity) for prefix, entity in _ENTITIES if name.startswith(prefix))


def _go_word(entity: str) -> str:
    return _GO_SPELLING.get(entity, entity)


def _data_wrap(entity: str) -> str:
    return f"failed to get data: Error getting data for {_go_word(entity)} '{{id}}': {{error}}"


def _class_and_reply(
    name: str, op: Operation | None, result: EntityKind | None
) -> tuple[str, RequestClass, Reply]:
    """(matched suffix, class, reply). A kind matching no suffix is a data read when its
    operation is an ARI GET (AsteriskInfo, AsteriskPing, ChannelRTPStatistics,
    RecordingStoredFile), else a command. A create or command whose row names the `result`
    entity it makes replies with that entity's key."""
    rule = next((rule for rule in _BY_SUFFIX if name.endswith(rule[0])), None)
    if rule is not None:
        suffix, cls, reply = rule
    else:
        suffix = ""
        cls, reply = (_DATA, Reply.DATA) if op and op.method == "GET" else (_COMMAND, Reply.OK)
    if result is not None and reply in (Reply.KEY_REQUEST, Reply.OK):
        reply = Reply.KEY_RESULT
    return suffix, cls, reply


def _data_field(op: Operation) -> str:
    """The `EntityData` field named by an operation's response model (`StoredRecording` ->
    `stored_recording`)."""
    field = re.sub(r"(?<!^)(?=[A-Z])", "_", op.response).lower()
    if field not in _DATA_FIELDS:
        raise ValueError(f"{op.name}: the row must name the data field for {op.response!r}")
    return field


def _entity_read(operation: str) -> str:
    """The ARI GET of the entity `operation` acts on: `channels.playWithId` (path
    `/channels/{channelId}/play/{playbackId}`) -> `channels.get` (`/channels/{channelId}`)."""
    path = OPERATIONS[operation].path
    head = path[: path.index("}") + 1]
    return next(op.name for op in OPERATIONS.values() if op.method == "GET" and op.path == head)


def _key_id(c: Invocation) -> tuple[str, ...]:
    return (c.key.id,)


def _no_path(c: Invocation) -> tuple[str, ...]:
    return ()


def _args(op: Operation, path: PathFn | None, query: QueryFn | None, body: BodyFn | None) -> ArgsFn:
    """The operation's path parameters named from its table row, valued by `path` (in the
    row's order; by default the key's ID, for an operation with one), plus query and body."""
    names = op.path_params
    if path is None and len(names) > 1:
        raise ValueError(f"{op.name}: the row must say how the request gives {names}")
    values = path or (_key_id if names else _no_path)

    def args(c: Invocation) -> Args:
        given = dict(zip(names, values(c), strict=True))
        return Args(given, query(c) if query else {}, body(c) if body else None)

    return args


def _kind(
    name: KindName,
    operation: str | None,
    summary: str,
    *,
    payload: str | None = None,
    payload_required: bool | None = None,
    needs_id: bool | None = None,
    path: PathFn | None = None,
    query: QueryFn | None = None,
    body: BodyFn | None = None,
    check: bool | str = False,
    reply: Reply | None = None,
    data: str = "",
    result: EntityKind | None = None,
    result_id: IdFn | None = None,
    list_id: str = "",
    generate: tuple[str, str] | None = None,
    binds: BindFn | None = None,
    wrap: str | None = None,
    filter_by_key: bool = False,
    select: str = "",
    validate: CheckFn | None = None,
    go: bool = True,
) -> KindSpec:
    """One row. What it leaves out is derived:

    - `entity` from the name's prefix (`_ENTITIES`); `cls` and `reply` from its suffix
      (`_BY_SUFFIX`), unless `reply` is given;
    - `needs_id`: false for lists and for kinds whose key names nothing;
    - `payload_required`: true when a payload is named;
    - `args` from `path` (the values of the operation's path parameters), `query` and `body`;
    - `check=True`: the ARI GET of the entity the operation acts on (a kind without an
      operation names the GET itself: `check="channels.get"`);
    - `data` of a DATA reply from the operation's response model; a list's `result` is the
      entity and its `result_id` is `list_id`; a created entity's `result_id` is its ID at the
      place `generate` names;
    - `wrap`: Go's data-function wording for reads by ID (`...Data`, `...Get`) and checks.
    """
    entity = _entity_of(name)
    op = OPERATIONS[operation] if operation else None
    suffix, cls, derived = _class_and_reply(name, op, result)
    reply = reply or derived
    lists = reply is Reply.KEYS
    check_op = check if isinstance(check, str) else None
    if check is True and operation:
        check_op = _entity_read(operation)
    if result is not None and generate is not None and generate[0] != "key" and not result_id:
        result_id = _new_id
    by_id = suffix in _READS_BY_ID and op is not None and bool(op.path_params)
    return KindSpec(
        name,
        cls,
        entity,
        needs_id=(bool(entity) and not lists) if needs_id is None else needs_id,
        payload=payload,
        payload_required=payload is not None if payload_required is None else payload_required,
        operation=operation,
        args=_args(op, path, query, body) if op else None,
        check=check_op,
        reply=reply,
        data=(data or _data_field(op)) if reply is Reply.DATA and op else data,
        result=entity if lists else str(result or ""),
        result_id=list_id if lists else result_id,
        generate=generate,
        binds=binds,
        wrap=wrap or (_data_wrap(entity) if by_id or check_op else "{error}"),
        filter_by_key=filter_by_key,
        select=select,
        validate=validate,
        go=go,
        summary=summary,
    )


def _reads(prefix: str, operation: str, list_operation: str | None, list_id: str) -> list[KindSpec]:
    """The Data / Get / List trio most resources share."""
    word = _go_word(_entity_of(prefix))
    data, get, list_ = (cast(KindName, prefix + verb) for verb in ("Data", "Get", "List"))
    rows = [
        _kind(data, operation, f"Read the {word}'s current data."),
        _kind(get, operation, f"Check that the {word} exists and return its key."),
    ]
    if list_operation:
        rows.append(_kind(list_, list_operation, f"List every {word}.", list_id=list_id))
    return rows


class _Stage(NamedTuple):
    """The row of `<Entity>Stage<Verb>`, which stages `<Entity><Verb>`: the same request
    without the ARI call, answering with the key `<Entity><Verb>` would answer with, so a
    client can subscribe before it executes ("stage, subscribe, execute").

    Staging a kind that acts on an existing entity (play, record, snoop) is a `get` that
    checks the entity exists, with Go's data-function wording; staging a kind that creates an
    entity from nothing keeps the `create` class and checks nothing.
    """

    name: KindName
    summary: str
    reply: Reply | None = None  # None: the staged kind's


def _staging(stage: _Stage, staged: KindSpec) -> KindSpec:
    assert staged.operation is not None
    on_entity = staged.needs_id
    return dataclasses.replace(
        staged,
        name=stage.name,
        summary=stage.summary,
        cls=_GET if on_entity else _CREATE,
        operation=None,
        args=None,
        check=(staged.check or _entity_read(staged.operation)) if on_entity else None,
        wrap=_data_wrap(staged.entity) if on_entity else staged.wrap,
        reply=stage.reply or staged.reply,
    )


def _resolve(rows: list[KindSpec | _Stage]) -> list[KindSpec]:
    """The rows, each `_Stage` replaced by the row of the kind it stages, in table order."""
    done: dict[str, KindSpec] = {}
    for row in rows:
        spec = (
            _staging(row, done[row.name.replace("Stage", "", 1)])
            if isinstance(row, _Stage)
            else row
        )
        done[spec.name] = spec
    return list(done.values())


# --- keys, IDs and bindings -------------------------------------------------------------------

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_CHANNEL: Final = EntityKind.CHANNEL.value


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


def _endpoint_key(c: Invocation) -> str | None:
    if c.key.kind != EntityKind.ENDPOINT:
        return "wrong key type"
    if split_endpoint_id(c.key.id) is None:
        return f"endpoint key {c.key.id!r} is not of the form tech/resource"
    return None


def _config_key(c: Invocation) -> str | None:
    if split_config_id(c.key.id) is None:
        return "failed to parse configuration key: invalid input ID"
    return None


def _config_path(c: Invocation) -> tuple[str, ...]:
    parts = split_config_id(c.key.id)
    if parts is None:  # the executor refuses such keys (`_config_key`) before building arguments
        raise ValueError("invalid input ID")
    return parts


def _endpoint_path(c: Invocation) -> tuple[str, ...]:
    parts = split_endpoint_id(c.key.id)
    if parts is None:
        raise ValueError("invalid endpoint ID")
    return parts


def _new_id(c: Invocation) -> str:
    """The ID of the entity the request creates: at the place the row's `generate` names (the
    key, or a payload attribute), else the one the executor generated."""
    where = c.spec.generate[0] if c.spec.generate else "key"
    if where == "key":
        return c.key.id or c.generated
    value: Any = c.payload
    for part in where.split("."):
        value = getattr(value, part)
    return cast(str, value) or c.generated


def _key_and_new(c: Invocation) -> tuple[str, ...]:
    return c.key.id, _new_id(c)


def _self(c: Invocation) -> tuple[str, str]:
    return c.spec.entity, c.key.id


def _new(c: Invocation) -> tuple[str, str]:
    return c.spec.result or c.spec.entity, _new_id(c)


def _payload_channel(c: Invocation) -> tuple[str, str]:
    return _CHANNEL, c.payload.channel


def _bind(*parts: Callable[[Invocation], tuple[str, str]]) -> BindFn:
    return lambda c: tuple(p(c) for p in parts)


_SELF = _bind(_self)
_NEW = _bind(_new)
_SELF_AND_NEW = _bind(_self, _new)
_SELF_AND_CHANNEL = _bind(_self, _payload_channel)

# An event source `scheme:id` binds the entity kind its events' keys carry. Go binds
# "deviceState", which no key carries (docs/protocol.md, "Go defects fixed", item 10).
_EVENT_SOURCES: Final = {
    "channel": EntityKind.CHANNEL.value,
    "bridge": EntityKind.BRIDGE.value,
    "endpoint": EntityKind.ENDPOINT.value,
    "deviceState": EntityKind.DEVICE_STATE.value,
}


def _event_source_binding(c: Invocation) -> tuple[tuple[str, str], ...]:
    scheme, _, ident = c.payload.event_source.partition(":")
    kind = _EVENT_SOURCES.get(scheme)
    return ((kind, ident),) if kind and ident else ()


def _originate_binds(c: Invocation) -> tuple[tuple[str, str], ...]:
    r = c.payload.originate_request
    ids = (r.channel_id or c.generated, r.other_channel_id, r.originator)
    binds = [(_CHANNEL, i) for i in ids if i]
    if c.key.kind in ("", _CHANNEL) and c.key.id:
        binds.append((_CHANNEL, c.key.id))
    return tuple(binds)


def _create_binds(c: Invocation) -> tuple[tuple[str, str], ...]:
    r = c.payload.channel_create_request
    return tuple((_CHANNEL, i) for i in (r.channel_id or c.generated, r.other_channel_id) if i)


# --- queries and bodies -----------------------------------------------------------------------


def _opt(value: Any) -> Any:
    """Empty strings, zeros and empty collections mean 'Asterisk's default': leave them out."""
    return value if value else None


def _external_media(c: Invocation) -> str | None:
    options = c.payload.options
    # AudioSocket and WebSocket connections need no host; RTP does.
    if not options.external_host and (options.encapsulation or "rtp") == "rtp":
        return "ExternalHost is mandatory"
    if not options.format:
        return "Format is mandatory"
    return None


def _variables_body(attr: str) -> BodyFn:
    """`{"variables": ...}` of the payload (or its attribute `attr`), when it has any."""

    def body(c: Invocation) -> object:
        holder = getattr(c.payload, attr) if attr else c.payload
        variables = holder.variables if holder is not None else None
        return {"variables": dict(variables)} if variables else None

    return body


def _config_fields(c: Invocation) -> object:
    return {"fields": [{"attribute": t.attribute, "value": t.value} for t in c.payload.tuples]}


def _bridge_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {"type": _opt(p.type) if p else None, "name": _opt(p.name) if p else None}


def _add_channel_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {
        "channel": p.channel,
        "role": _opt(p.role),
        "absorbDTMF": p.absorb_dtmf or None,
        "mute": p.mute or None,
        "inhibitConnectedLineUpdates": p.inhibit_connected_line_updates or None,
    }


def _recording_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    opts = p.options
    query: dict[str, object] = {
        "name": p.name or c.generated,
        "format": (opts.format if opts else "") or "wav",
    }
    if opts is not None:
        query.update(
            maxDurationSeconds=opts.max_duration // _NS_PER_S,
            maxSilenceSeconds=opts.max_silence // _NS_PER_S,
            ifExists=_opt(opts.exists),
            beep=opts.beep,
            terminateOn=_opt(opts.terminate),
        )
    if getattr(p, "recorder_format", ""):
        query["recorder_format"] = p.recorder_format
    return query


def _play_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    query: dict[str, object] = {
        "media": p.media_uri,
        "lang": _opt(p.lang),
        "offsetms": _opt(p.offsetms),
        "skipms": _opt(p.skipms),
    }
    if getattr(p, "announcer_format", ""):
        query["announcer_format"] = p.announcer_format
    return query


def _originate_query(c: Invocation) -> dict[str, object]:
    r = c.payload.originate_request
    return {
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
        "originator": _opt(r.originator or (c.key.id if c.key.kind == _CHANNEL else "")),
        "formats": _opt(r.formats),
    }


def _create_query(c: Invocation) -> dict[str, object]:
    r = c.payload.channel_create_request
    return {
        "endpoint": r.endpoint,
        "app": r.app or c.app,
        "appArgs": _opt(r.app_args),
        "channelId": r.channel_id or c.generated,
        "otherChannelId": _opt(r.other_channel_id),
        "originator": _opt(r.originator or (c.key.id if c.key.kind == _CHANNEL else "")),
        "formats": _opt(r.formats),
    }


def _external_media_query(c: Invocation) -> dict[str, object]:
    o = c.payload.options
    return {
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


def _snoop_query(c: Invocation) -> dict[str, object]:
    o = c.payload.options
    if o is None:
        return {"app": c.app}
    return {
        "app": o.app or c.app,
        "appArgs": _opt(o.app_args),
        "spy": _opt(o.spy),
        "whisper": _opt(o.whisper),
    }


def _continue_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {
        "context": _opt(p.context),
        "extension": _opt(p.extension),
        "priority": _opt(p.priority),
        "label": _opt(p.label),
    }


def _dial_query(c: Invocation) -> dict[str, object]:
    return {"caller": _opt(c.payload.caller), "timeout": _opt(c.payload.timeout // _NS_PER_S)}


def _dtmf_query(c: Invocation) -> dict[str, object]:
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
    return query


def _hangup_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    if p is not None and p.reason_code:
        return {"reason_code": p.reason_code, "reason": None}
    return {"reason_code": None, "reason": (p.reason if p is not None else "") or "normal"}


def _user_event_body(c: Invocation) -> object:
    event = c.payload.user_event.userevent
    return {"variables": (event if isinstance(event, dict) else None) or {}}


def _generic_user_event_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {"application": p.application or c.key.app or c.app, "source": _opt(p.source)}


def _sound_query(c: Invocation) -> dict[str, object]:
    filters = (c.payload.filters if c.payload is not None else None) or {}
    return {"lang": _opt(filters.get("lang")), "format": _opt(filters.get("format"))}


def _direction(c: Invocation) -> dict[str, object]:
    return {"direction": (c.payload.direction if c.payload else "") or "both"}


def _event_source(c: Invocation) -> dict[str, object]:
    return {"eventSource": c.payload.event_source}


def _variable(c: Invocation) -> dict[str, object]:
    return {"variable": c.payload.name}


def _set_variable(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {"variable": p.name, "value": p.value, "report_events": p.report_events or None}


def _variables(c: Invocation) -> dict[str, object]:
    return {"variables": list(c.payload.names)}


def _set_variables(c: Invocation) -> object:
    return {"variables": dict(c.payload.values)}


def _message_query(c: Invocation) -> dict[str, object]:
    return {"from": c.payload.from_, "body": _opt(c.payload.body)}


def _refer_query(c: Invocation) -> dict[str, object]:
    p = c.payload
    return {"from": p.from_, "refer_to": p.refer_to, "to_self": p.to_self or None}


# --- the table --------------------------------------------------------------------------------
# One row per kind: name, ARI operation (None: no ARI call), summary for the docs, then only
# what `_kind` cannot derive. A `...Stage...` row derives from the kind it stages (`_Stage`).
# Laid out as a table, so the formatter leaves it alone.
# fmt: off
_ROWS: list[KindSpec | _Stage] = [
    # --- applications ------------------------------------------------------------------------
    *_reads("Application", "applications.get", "applications.list", "name"),
    _kind("ApplicationSubscribe", "applications.subscribe",
          "Subscribe the application to an event source.",
          payload="application_subscribe", query=_event_source, binds=_event_source_binding,
          wrap="Error subscribing application '{id}' for event source '{source}': {error}"),
    _kind("ApplicationUnsubscribe", "applications.unsubscribe",
          "Unsubscribe the application from an event source.",
          payload="application_subscribe", query=_event_source,
          wrap="Error unsubscribing application '{id}' for event source '{source}': {error}"),
    _kind("ApplicationEventFilter", "applications.filter",
          "Set which event types the application receives.",
          payload="application_event_filter",
          body=lambda c: {"allowed": c.payload.allowed, "disallowed": c.payload.disallowed},
          reply=Reply.DATA, go=False),  # ours: a command answering with the application
    # --- asterisk ----------------------------------------------------------------------------
    _kind("AsteriskInfo", "asterisk.getInfo", "Asterisk system information.",
          payload="asterisk_info", payload_required=False,
          query=lambda c: {"only": _opt(list(c.payload.only)) if c.payload else None},
          data="asterisk"),  # Go's name; the model is AsteriskInfo
    _kind("AsteriskPing", "asterisk.ping", "Ping Asterisk.", go=False),
    _kind("AsteriskVariableGet", "asterisk.getGlobalVar", "Read a global variable.",
          query=lambda c: {"variable": c.key.id}),
    _kind("AsteriskVariableSet", "asterisk.setGlobalVar", "Set a global variable.",
          payload="asterisk_variable_set",
          query=lambda c: {"variable": c.key.id, "value": c.payload.value}),
    _kind("AsteriskConfigData", "asterisk.getObject",
          "Read a dynamic configuration object (key id `class/type/id`).",
          path=_config_path, validate=_config_key,
          data="config"),  # Go's ConfigData, built from Asterisk's list of tuples
    _kind("AsteriskConfigUpdate", "asterisk.updateObject",
          "Create or update a dynamic configuration object.",
          payload="asterisk_config", path=_config_path, body=_config_fields,
          validate=_config_key),
    _kind("AsteriskConfigDelete", "asterisk.deleteObject",
          "Delete a dynamic configuration object.", path=_config_path, validate=_config_key),
    _kind("AsteriskLoggingCreate", "asterisk.addLog", "Create a log channel.",
          payload="asterisk_logging_channel",
          query=lambda c: {"configuration": c.payload.levels}),
    # ARI reads log channels only as a list: Data and Get pick the key's entry out of it.
    _kind("AsteriskLoggingData", "asterisk.listLogChannels", "Read one log channel.",
          select="channel", data="log"),  # Go's LogData
    _kind("AsteriskLoggingGet", "asterisk.listLogChannels", "Check that a log channel exists.",
          select="channel"),
    _kind("AsteriskLoggingList", "asterisk.listLogChannels", "List log channels.",
          list_id="channel"),
    _kind("AsteriskLoggingRotate", "asterisk.rotateLog", "Rotate a log channel."),
    _kind("AsteriskLoggingDelete", "asterisk.deleteLog", "Delete a log channel."),
    *_reads("AsteriskModule", "asterisk.getModule", "asterisk.listModules", "name"),
    _kind("AsteriskModuleLoad", "asterisk.loadModule", "Load a module."),
    _kind("AsteriskModuleReload", "asterisk.reloadModule", "Reload a module."),
    _kind("AsteriskModuleUnload", "asterisk.unloadModule", "Unload a module."),
    # --- bridges -----------------------------------------------------------------------------
    _kind("BridgeCreate", "bridges.createWithId",
          "Create a bridge (an empty key ID gets a generated one).",
          payload="bridge_create", payload_required=False, needs_id=False,
          path=lambda c: (_new_id(c),), query=_bridge_query, body=_variables_body(""),
          generate=("key", "br"), binds=_NEW),
    _Stage("BridgeStageCreate", "Reserve a bridge ID on one node; BridgeCreate executes it."),
    *_reads("Bridge", "bridges.get", "bridges.list", "id"),
    _kind("BridgeDelete", "bridges.destroy", "Destroy a bridge.", binds=_SELF),
    _kind("BridgeAddChannel", "bridges.addChannel", "Add a channel to a bridge.",
          payload="bridge_add_channel", query=_add_channel_query, binds=_SELF_AND_CHANNEL),
    _kind("BridgeRemoveChannel", "bridges.removeChannel", "Remove a channel from a bridge.",
          payload="bridge_remove_channel", query=lambda c: {"channel": c.payload.channel},
          binds=_SELF_AND_CHANNEL),
    _kind("BridgeMOH", "bridges.startMoh", "Play music on hold to a bridge.",
          payload="bridge_moh", query=lambda c: {"mohClass": _opt(c.payload.moh_class)},
          binds=_SELF),
    _kind("BridgeStopMOH", "bridges.stopMoh", "Stop music on hold.", binds=_SELF),
    _kind("BridgePlay", "bridges.playWithId", "Play media to a bridge.",
          payload="bridge_play", path=_key_and_new, query=_play_query,
          result=EntityKind.PLAYBACK, generate=("playback_id", "pb"), binds=_SELF_AND_NEW),
    _Stage("BridgeStagePlay", "Reserve a playback ID; BridgePlay executes it."),
    _kind("BridgeRecord", "bridges.record", "Record a bridge.",
          payload="bridge_record", query=_recording_query,
          check=True,  # Go reads the bridge first (ChannelRecord does not)
          result=EntityKind.LIVE_RECORDING, generate=("name", "rc"), binds=_SELF_AND_NEW),
    _Stage("BridgeStageRecord", "Reserve a recording name; BridgeRecord executes it.",
           reply=Reply.KEY_REQUEST),  # Go's: the request key retyped as the recording's
    _kind("BridgeSubscribe", None, "Route the bridge's events to the key's dialog.",
          binds=_SELF),
    _kind("BridgeUnsubscribe", None, "No-op (kept for Go peers)."),
    _kind("BridgeVideoSource", "bridges.setVideoSource", "Set a bridge's video source.",
          payload="bridge_video_source", path=lambda c: (c.key.id, c.payload.channel),
          binds=_SELF_AND_CHANNEL),
    _kind("BridgeVideoSourceDelete", "bridges.clearVideoSource",
          "Clear a bridge's video source.", binds=_SELF),
    _kind("BridgeVariableGet", "bridges.getBridgeVar", "Read a bridge variable.",
          payload="bridge_variable", query=_variable, go=False),
    _kind("BridgeVariableSet", "bridges.setBridgeVar", "Set a bridge variable.",
          payload="bridge_variable", query=_set_variable, go=False),
    _kind("BridgeVariablesGet", "bridges.getBridgeVars", "Read several bridge variables.",
          payload="variables", query=_variables, go=False),
    _kind("BridgeVariablesSet", "bridges.setBridgeVars", "Set several bridge variables.",
          payload="variables", body=_set_variables, go=False),
    # --- channels ----------------------------------------------------------------------------
    _kind("ChannelAnswer", "channels.answer", "Answer a channel.", binds=_SELF),
    _kind("ChannelBusy", "channels.hangup", "Hang up with cause busy.",
          query=lambda c: {"reason": "busy"}, binds=_SELF),
    _kind("ChannelCongestion", "channels.hangup", "Hang up with cause congestion.",
          query=lambda c: {"reason": "congestion"}, binds=_SELF),
    _kind("ChannelCreate", "channels.create", "Create a channel without dialing it.",
          payload="channel_create", needs_id=False,  # a key names the originator
          query=_create_query, body=_variables_body("channel_create_request"),
          result=EntityKind.CHANNEL, generate=("channel_create_request.channel_id", "ch"),
          binds=_create_binds),
    _kind("ChannelContinue", "channels.continueInDialplan",
          "Leave Stasis and continue in the dialplan.",
          payload="channel_continue", query=_continue_query),
    *_reads("Channel", "channels.get", "channels.list", "id"),
    _kind("ChannelDial", "channels.dial", "Dial a created channel.",
          payload="channel_dial", query=_dial_query),
    _kind("ChannelHangup", "channels.hangup", "Hang up a channel.",
          payload="channel_hangup", payload_required=False, query=_hangup_query),
    _kind("ChannelHold", "channels.hold", "Put a channel on hold."),
    _kind("ChannelMOH", "channels.startMoh", "Play music on hold to a channel.",
          payload="channel_moh", query=lambda c: {"mohClass": _opt(c.payload.music)}),
    _kind("ChannelMute", "channels.mute", "Mute a channel.",
          payload="channel_mute", payload_required=False, query=_direction),
    _kind("ChannelOriginate", "channels.originateWithId", "Originate a call.",
          payload="channel_originate", needs_id=False,  # a key names the originator
          path=lambda c: (_new_id(c),), query=_originate_query,
          body=_variables_body("originate_request"),
          result=EntityKind.CHANNEL, generate=("originate_request.channel_id", "ch"),
          binds=_originate_binds),
    _Stage("ChannelStageOriginate",
           "Reserve a channel ID on one node; ChannelOriginate executes it."),
    _kind("ChannelPlay", "channels.playWithId", "Play media to a channel.",
          payload="channel_play", path=_key_and_new, query=_play_query,
          check=True,  # Go reads the channel first (BridgePlay does not)
          result=EntityKind.PLAYBACK, generate=("playback_id", "pb"), binds=_SELF_AND_NEW),
    _Stage("ChannelStagePlay", "Reserve a playback ID; ChannelPlay executes it."),
    _kind("ChannelRecord", "channels.record", "Record a channel.",
          payload="channel_record", query=_recording_query,
          result=EntityKind.LIVE_RECORDING, generate=("name", "rc"), binds=_SELF_AND_NEW),
    _Stage("ChannelStageRecord", "Reserve a recording name; ChannelRecord executes it.",
           reply=Reply.KEY_REQUEST),  # as BridgeStageRecord
    _kind("ChannelRing", "channels.ring", "Indicate ringing."),
    _kind("ChannelSendDTMF", "channels.sendDTMF", "Send DTMF to a channel.",
          payload="channel_send_dtmf", query=_dtmf_query),
    _kind("ChannelSilence", "channels.startSilence", "Play silence."),
    _kind("ChannelSnoop", "channels.snoopChannelWithId", "Snoop (spy or whisper) on a channel.",
          payload="channel_snoop", path=_key_and_new, query=_snoop_query,
          result=EntityKind.CHANNEL, generate=("snoop_id", "sn"),
          binds=_NEW),  # Go binds the snoop channel only
    _Stage("ChannelStageSnoop", "Reserve a snoop channel ID; ChannelSnoop executes it."),
    _kind("ChannelExternalMedia", "channels.externalMedia", "Create an external media channel.",
          payload="channel_external_media", needs_id=False,
          query=_external_media_query, body=_variables_body("options"),
          result=EntityKind.CHANNEL, generate=("options.channel_id", "ch"), binds=_NEW,
          validate=_external_media),
    _Stage("ChannelStageExternalMedia", "Validate and reserve an external media channel ID."),
    _kind("ChannelStopHold", "channels.unhold", "Take a channel off hold."),
    _kind("ChannelStopMOH", "channels.stopMoh", "Stop music on hold."),
    _kind("ChannelStopRing", "channels.ringStop", "Stop ringing."),
    _kind("ChannelStopSilence", "channels.stopSilence", "Stop silence."),
    _kind("ChannelSubscribe", None, "Route the channel's events to the key's dialog.",
          binds=_SELF),
    _kind("ListenTake", None,
          "Take a call offered to the application's listen group: bind its channel to the "
          "key's dialog and become its one owner (`taken` if another instance is).",
          payload="listen_take", binds=_SELF, check="channels.get", go=False),
    _kind("ListenSaveState", None,
          "Save the state the call's next owner receives if it is handed over (owner only; "
          "`taken` from any other instance, `too_large` beyond the server's cap).",
          payload="listen_state", go=False),
    _kind("ListenRelease", None,
          "Hand a call this instance owns over to the listen group now (draining): the "
          "server offers it as `CallHandover` (`taken` from an instance that is not its owner).",
          payload="listen_take", go=False),
    _kind("ChannelUnmute", "channels.unmute", "Unmute a channel.",
          payload="channel_mute", payload_required=False, query=_direction),
    _kind("ChannelVariableGet", "channels.getChannelVar", "Read a channel variable.",
          payload="channel_variable", query=_variable),
    _kind("ChannelVariableSet", "channels.setChannelVar", "Set a channel variable.",
          payload="channel_variable", query=_set_variable),
    _kind("ChannelVariablesGet", "channels.getChannelVars", "Read several channel variables.",
          payload="variables", query=_variables, go=False),
    _kind("ChannelVariablesSet", "channels.setChannelVars", "Set several channel variables.",
          payload="variables", body=_set_variables, go=False),
    _kind("ChannelUserEvent", "events.userEvent", "Raise a user event with the channel as source.",
          payload="channel_user_event", path=lambda c: (c.payload.user_event.eventname,),
          query=lambda c: {"application": c.key.app or c.app, "source": "channel:" + c.key.id},
          body=_user_event_body),
    _kind("ChannelMove", "channels.move", "Move a channel to another Stasis application.",
          payload="channel_move",
          query=lambda c: {"app": c.payload.app, "appArgs": _opt(c.payload.app_args)}, go=False),
    _kind("ChannelRedirect", "channels.redirect", "Redirect a channel to another endpoint.",
          payload="channel_redirect", query=lambda c: {"endpoint": c.payload.endpoint}, go=False),
    _kind("ChannelProgress", "channels.progress", "Indicate progress.", go=False),
    _kind("ChannelRTPStatistics", "channels.rtpstatistics", "RTP statistics of a channel.",
          data="rtp_statistics", go=False),  # the model is RTPstat
    _kind("ChannelTransferProgress", "channels.transfer_progress",
          "Report the progress of a transfer.",
          payload="channel_transfer_progress", query=lambda c: {"states": c.payload.states},
          go=False),
    # --- device states -----------------------------------------------------------------------
    *_reads("DeviceState", "deviceStates.get", "deviceStates.list", "name"),
    _kind("DeviceStateUpdate", "deviceStates.update", "Set a Stasis device state.",
          payload="device_state_update", query=lambda c: {"deviceState": c.payload.state}),
    _kind("DeviceStateDelete", "deviceStates.delete", "Delete a Stasis device state."),
    # --- endpoints ---------------------------------------------------------------------------
    _kind("EndpointData", "endpoints.get", "Read an endpoint (key id `tech/resource`).",
          path=_endpoint_path, validate=_endpoint_key),
    _kind("EndpointGet", "endpoints.get", "Check that an endpoint exists.",
          path=_endpoint_path, validate=_endpoint_key),
    _kind("EndpointList", "endpoints.list", "List endpoints.", list_id="technology/resource"),
    _kind("EndpointListByTech", "endpoints.listByTech", "List the endpoints of one technology.",
          payload="endpoint_list_by_tech", path=lambda c: (c.payload.tech,),
          list_id="technology/resource", filter_by_key=True),
    _kind("EndpointSendMessage", "endpoints.sendMessage", "Send a text message.",
          payload="endpoint_send_message", needs_id=False,  # the payload names the endpoints
          query=lambda c: {"to": c.payload.to, **_message_query(c)},
          body=_variables_body(""), go=False),
    _kind("EndpointRefer", "endpoints.refer", "Send a REFER.",
          payload="endpoint_refer", needs_id=False,  # the payload names the endpoints
          query=lambda c: {"to": c.payload.to, **_refer_query(c)},
          body=_variables_body(""), go=False),
    _kind("EndpointSendMessageToEndpoint", "endpoints.sendMessageToEndpoint",
          "Send a text message to one endpoint (key id `tech/resource`).",
          payload="endpoint_send_message", path=_endpoint_path, query=_message_query,
          body=_variables_body(""), validate=_endpoint_key, go=False),
    _kind("EndpointReferToEndpoint", "endpoints.referToEndpoint",
          "Send a REFER to one endpoint (key id `tech/resource`).",
          payload="endpoint_refer", path=_endpoint_path, query=_refer_query,
          body=_variables_body(""), validate=_endpoint_key, go=False),
    # --- events ------------------------------------------------------------------------------
    _kind("UserEvent", "events.userEvent",
          "Raise a user event (key id = event name) with any sources.",
          payload="user_event", query=_generic_user_event_query,
          body=lambda c: {"variables": dict(c.payload.variables)}, go=False),
    _kind("ChannelClaim", "events.claimChannel", "Claim a broadcast channel for an application.",
          payload="channel_claim",
          query=lambda c: {"channelId": c.key.id, "application": c.payload.application},
          go=False),
    # --- mailboxes ---------------------------------------------------------------------------
    *_reads("Mailbox", "mailboxes.get", "mailboxes.list", "name"),
    _kind("MailboxUpdate", "mailboxes.update", "Set a mailbox's message counts.",
          payload="mailbox_update",
          query=lambda c: {"oldMessages": c.payload.old, "newMessages": c.payload.new}),
    _kind("MailboxDelete", "mailboxes.delete", "Delete a mailbox."),
    # --- playbacks ---------------------------------------------------------------------------
    _kind("PlaybackControl", "playbacks.control",
          "Pause, unpause, restart, reverse or forward a playback.",
          payload="playback_control", query=lambda c: {"operation": c.payload.command}),
    *_reads("Playback", "playbacks.get", None, "id"),
    _kind("PlaybackStop", "playbacks.stop", "Stop a playback."),
    _kind("PlaybackSubscribe", None, "Route the playback's events to the key's dialog.",
          binds=_SELF),
    # --- recordings --------------------------------------------------------------------------
    _kind("RecordingStoredCopy", "recordings.copyStored", "Copy a stored recording.",
          payload="recording_stored_copy",
          query=lambda c: {"destinationRecordingName": c.payload.destination},
          result=EntityKind.STORED_RECORDING, result_id=lambda c: c.payload.destination),
    *_reads("RecordingStored", "recordings.getStored", "recordings.listStored", "name"),
    _kind("RecordingStoredDelete", "recordings.deleteStored", "Delete a stored recording."),
    _kind("RecordingStoredFile", "recordings.getStoredFile",
          "Download a stored recording's file (streamed).",
          data="file", go=False),  # binary: the server sends it base64
    *_reads("RecordingLive", "recordings.getLive", None, "name"),
    _kind("RecordingLiveMute", "recordings.mute", "Mute a live recording."),
    _kind("RecordingLivePause", "recordings.pause", "Pause a live recording."),
    _kind("RecordingLiveResume", "recordings.unpause", "Resume a paused live recording."),
    _kind("RecordingLiveScrap", "recordings.cancel", "Stop a live recording and discard it."),
    _kind("RecordingLiveStop", "recordings.stop", "Stop a live recording and store it."),
    _kind("RecordingLiveSubscribe", None, "Route the recording's events to the key's dialog.",
          binds=_SELF),
    _kind("RecordingLiveUnmute", "recordings.unmute", "Unmute a live recording."),
    # --- sounds ------------------------------------------------------------------------------
    _kind("SoundData", "sounds.get", "Read a sound."),
    _kind("SoundList", "sounds.list", "List sounds, by language and format.",
          payload="sound_list", payload_required=False, query=_sound_query,
          list_id="id", filter_by_key=True),
]
# fmt: on

KINDS: Final[Mapping[str, KindSpec]] = MappingProxyType({row.name: row for row in _resolve(_ROWS)})
"""Every request kind by name: the 111 of Go ari-proxy v5 and ours."""

if len(KINDS) != len(_ROWS):  # pragma: no cover - a duplicated row is a programming error
    raise RuntimeError("duplicate kind in the table")


# --- checking a request at the edge ---------------------------------------------------------

_KEY_FIELDS: Final = ("id", "node", "dialog", "app")


def check_request(
    kind: str, key: Key | None, payload: Any, *, app: str = "", node: str = ""
) -> None:
    """Refuse a request whose values Asterisk would misread, before anything is sent.

    Both clients call it before a request leaves them, and the server on every request it
    decodes, so a hostile value never reaches Asterisk: a control character (below 0x20, or
    DEL) in the key's `id`, `node`, `dialog` or `app`, in a value that becomes an ARI path
    segment, in an ID or name query value, or in a variable's name; a NUL in any text; an
    integer outside its ARI parameter's range (`ari_proxy.spec.int_bounds`). The kind's row
    builds the ARI parameters exactly as the executor will (`KindSpec.args`) and
    `ari_proxy.spec.check_path` / `check_query` judge them, the checks `build_path` and
    `build_query` make again when the HTTP request is built.

    What this does not judge (an unknown kind, a missing key or payload, a payload the row
    cannot read) is left to the executor, which words those errors as Go does.

    Raises:
        InvalidRequestError: naming the field (`key.id`, or the ARI parameter) and what is
            wrong with it.
    """
    if key is not None and control_character(key.id + key.node + key.dialog + key.app):
        for name in _KEY_FIELDS:  # which one (one search of them all is the common case)
            value: str = getattr(key, name)
            if (bad := control_character(value)) is not None:
                raise InvalidRequestError(
                    f"{kind}: key.{name} {value[:100]!r} contains a control character ({bad})"
                )
    spec = KINDS.get(kind)
    if spec is not None and spec.args is None and "Stage" in kind:
        spec = KINDS.get(kind.replace("Stage", "", 1))  # judged as the kind it stages
    if spec is None or spec.args is None or spec.operation is None:
        return
    if spec.payload is not None and payload is None and spec.payload_required:
        return  # refused as missing by the executor
    call = Invocation(spec, key or Key(), payload, app, node)
    try:
        args = spec.args(call)
    except (AttributeError, TypeError, ValueError, KeyError):
        return  # a payload the row cannot read: the executor says why
    op = OPERATIONS[spec.operation]
    try:
        check_path(op, args.path)
        check_query(op, args.query)
        _check_body(op, args.body)
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(f"{kind}: {exc}") from None


def _check_body(op: Operation, body: object) -> None:
    """Variable and field names in a JSON body (their values are text, sent as JSON)."""
    if not isinstance(body, dict):
        return
    variables = body.get("variables")
    if isinstance(variables, dict):
        for name in variables:
            if isinstance(name, str) and (bad := control_character(name)) is not None:
                raise ValueError(
                    f"{op.name}: variable name {name[:100]!r} contains a control character ({bad})"
                )
