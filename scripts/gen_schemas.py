#!/usr/bin/env python3
"""Generate schemas/*.json, JSON Schemas of the ari-proxy wire messages, and docs/schemas.md.

The schemas come from the types the code encodes and decodes with (`msgspec.json.schema`), then
post-processed where msgspec's view is not the wire's: which members are always written, what
the raw-JSON members hold, and how a Go server writes events. Each step says why.

Usage::

    python scripts/gen_schemas.py            # rewrite schemas/ and docs/schemas.md
    python scripts/gen_schemas.py --check    # exit 1 if any of them is out of date
"""

# ruff: noqa: E501 - the markdown below is one paragraph per line
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import msgspec._json_schema
import msgspec.inspect as mi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ari_proxy.events import ConnectionGap  # noqa: E402
from ari_proxy.protocol import (  # noqa: E402
    KINDS,
    Announcement,
    EntityKind,
    ErrorCode,
    Key,
    Request,
    Response,
    encode,
)
from ari_proxy.protocol._datetime import _GO_LAYOUT  # noqa: E402
from ari_proxy.spec._models import AnyMessage  # noqa: E402

Schema = dict[str, Any]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:ari-proxy:v5:"
SCHEMAS = Path("schemas")
DOC = Path("docs") / "schemas.md"

EXAMPLE_REQUEST: Schema = {
    "kind": "ChannelAnswer",
    "key": {"kind": "channel", "id": "<id>", "node": "<node>", "app": "<app>"},
}
"""The request docs/schemas.md shows (the tests validate it)."""


# --- msgspec's schema, and where it is not the wire ------------------------------------------

_RAW_DEFAULT = "\0raw default"


def _raw_default(obj: Any) -> str:
    if isinstance(obj, msgspec.Raw):
        return _RAW_DEFAULT
    raise NotImplementedError


@contextlib.contextmanager
def _raw_defaults_marked() -> Iterator[None]:
    # msgspec cannot write a `msgspec.Raw` default into a schema (TypeError). Our raw members
    # default to the empty Raw, which means "omitted", not a value: mark it here and drop the
    # marker in `_drop_raw_defaults`. Patching msgspec's private name fails loudly if it moves.
    to_builtins = functools.partial(msgspec.to_builtins, enc_hook=_raw_default)
    with mock.patch.object(msgspec._json_schema, "to_builtins", to_builtins):
        yield


def _walk(node: Any, visit: Callable[[Schema], None]) -> None:
    """Call `visit` on every object of a schema, parents first."""
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for item in node:
            _walk(item, visit)


def _drop_raw_defaults(node: Schema) -> None:
    if node.get("default") == _RAW_DEFAULT:
        del node["default"]


def _structs(info: mi.Type, found: dict[str, type[msgspec.Struct]]) -> None:
    """Every struct type reachable from `info`, by the name msgspec gives its component."""
    if isinstance(info, mi.StructType):
        if info.cls.__name__ in found:
            return
        found[info.cls.__name__] = info.cls
        for field in info.fields:
            _structs(field.type, found)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            _structs(member, found)
    elif isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        _structs(info.item_type, found)
    elif isinstance(info, mi.DictType):
        _structs(info.value_type, found)


def _always_written(cls: type[msgspec.Struct]) -> list[str]:
    """The members `cls` writes even at its zero value: Go fields without `omitempty`.

    msgspec's schema calls a field with a default optional, but under `omit_defaults` our
    `kept` fields, and every field of a struct without it, are always written: by us and by
    Go. Encoding the zero value asks the encoder itself rather than restating its rules.
    """
    return list(msgspec.json.decode(encode(cls())))


def _message_schema(root: type[msgspec.Struct]) -> Schema:
    """msgspec's schema of a message struct, with `required` listing what is always written."""
    with _raw_defaults_marked():
        schema = msgspec.json.schema(root)
    _walk(schema, _drop_raw_defaults)
    found: dict[str, type[msgspec.Struct]] = {}
    _structs(mi.type_info(root), found)
    assert set(found) == set(schema["$defs"]), "a component that is not a struct"
    for name, cls in found.items():
        schema["$defs"][name]["required"] = _always_written(cls)
    return schema


def _document(name: str, title: str, description: str, schema: Schema) -> Schema:
    return {
        "$schema": DIALECT,
        "$id": f"{ID_PREFIX}{name}",
        "title": title,
        "description": description,
        **schema,
    }


def _holds_container(schema: Schema) -> bool:
    """Whether `schema` accepts an object or a list (a model, a map, a list)."""
    if "anyOf" in schema:
        return any(_holds_container(option) for option in schema["anyOf"])
    return "$ref" in schema or schema.get("type") in ("object", "array")


def _nullable(schema: Schema) -> Schema:
    """`schema` that also accepts `null`, keeping its annotations at the top."""
    if "anyOf" in schema:
        if {"type": "null"} not in schema["anyOf"]:
            schema["anyOf"].append({"type": "null"})
        return schema
    notes: Schema = {k: schema.pop(k) for k in ("default", "description", "title") if k in schema}
    return {"anyOf": [schema, {"type": "null"}], **notes}


# Docstrings that name Python attributes rather than JSON members get the wire's words instead.
_WIRE_DOCS = {
    "BridgeAddChannel": "`bridge_add_channel`. Extension: `inhibitConnectedLineUpdates` (ARI 22).",
    "EndpointRefer": "`endpoint_refer`: a SIP REFER.",
    "EndpointSendMessage": "`endpoint_send_message`: a text message.",
    "RecordingOptions": "ari `RecordingOptions`: Go gives it no JSON tags, so the members are capitalised and all present. `MaxDuration` and `MaxSilence` are nanoseconds; `Exists` is fail, overwrite or append; `Terminate` is none, any, `*` or `#`.",
}


# --- the schemas -----------------------------------------------------------------------------


def _payload_note(field: str) -> str:
    specs = [s for s in KINDS.values() if s.payload == field]
    note = f"The payload of {', '.join(s.name for s in specs)}"
    refusing = [s.name for s in specs if s.payload_required]
    if len(refusing) == len(specs):
        note += ": a request without it is refused"
    elif refusing:
        note += f"; {', '.join(refusing)} refuse a request without it"
    if not any(s.go for s in specs):
        note += " (our own kinds: Go servers answer them `Not implemented`)"
    return note + "."


def request_schema() -> Schema:
    schema = _message_schema(Request)
    defs = schema["$defs"]
    for name, text in _WIRE_DOCS.items():
        defs[name]["description"] = text
    fields = defs["Request"]["properties"]
    fields["kind"].update(
        description='The operation (docs/protocol.md lists them). A server answers a kind it does not know `Not implemented`; a ping carries `""`.',
        examples=sorted(KINDS),
    )
    fields["key"]["description"] = "The entity the request is about, or `null`."
    fields["deadline"]["description"] = (
        "Ours, optional: when the caller gives up (Unix time in seconds). A server of ours does "
        "not start a request whose deadline has passed; Go servers ignore it."
    )
    payloads = [f for f in fields if f not in ("kind", "key", "deadline")]
    assert {s.payload for s in KINDS.values() if s.payload} == set(payloads)
    for field in payloads:
        fields[field]["description"] = _payload_note(field)
    defs["Request"]["description"] = (
        "A request from a client to the servers on `ari.<class>`, `ari.<class>.<app>` or "
        "`ari.<class>.<app>.<node>` (class get, data, command or create; a ping on `ari.ping` "
        "has the same shape). `kind` and `key` are always written; the kind's payload, if it "
        "has one, goes in the member its description names, and the others are left out. "
        "Servers ignore members they do not know."
    )
    # UserEventBody's entities are raw JSON to us; Go writes them as (zero-value) objects.
    for member in ("bridge", "channel", "endpoint"):
        defs["UserEventBody"]["properties"][member] = {
            "type": ["object", "null"],
            "description": f"An ARI {member} object; the server does not read it.",
        }
    _describe_key(defs["Key"])
    return _document(
        "request",
        "ari-proxy request",
        "What a client publishes to ask the servers for an ARI operation.",
        schema,
    )


# EntityData's members are raw JSON (`msgspec.Raw`), which msgspec describes as anything.
_ENTITY_MEMBERS = {
    "application": "Application",
    "bridge": "Bridge",
    "channel": "Channel",
    "config": "Go's ConfigData: `key`, `Class`, `Type`, `Name` and `Fields` (attribute/value pairs)",
    "device_state": "DeviceState",
    "endpoint": "Endpoint",
    "live_recording": "LiveRecording",
    "log": "Go's LogData: `key`, `channel`, `levels`, `types`, `status`, then Asterisk's LogChannel members",
    "mailbox": "Mailbox",
    "module": "Module",
    "playback": "Playback",
    "sound": "Sound",
    "stored_recording": "StoredRecording",
    "text_message": "TextMessage",
}
_AS_IS_MEMBERS = {
    "asterisk": "Asterisk's AsteriskInfo as it answered (no key).",
    "asterisk_ping": "Ours: Asterisk's AsteriskPing as it answered.",
    "rtp_statistics": "Ours: Asterisk's RTPstat as it answered.",
    "variables": "Ours: Asterisk's answer for several variables, as it answered.",
}


def response_schema() -> Schema:
    schema = _message_schema(Response)
    defs = schema["$defs"]
    data = defs["EntityData"]["properties"]
    raw = {name for name, value in data.items() if "type" not in value and "anyOf" not in value}
    assert raw == set(_ENTITY_MEMBERS) | set(_AS_IS_MEMBERS) | {"file"}, raw
    for name, model in _ENTITY_MEMBERS.items():
        # Go decodes these into its data structs, which begin with the key.
        text = (
            model if model.startswith("Go's") else f"Asterisk's {model}, the key spliced in first"
        )
        data[name] = {
            "type": "object",
            "properties": {"key": {"anyOf": [{"$ref": "#/$defs/Key"}, {"type": "null"}]}},
            "description": text + ".",
        }
    for name, text in _AS_IS_MEMBERS.items():
        data[name] = {"description": text}
    data["file"] = {
        "type": "string",
        "contentEncoding": "base64",
        "description": "Ours: a stored recording's file (RecordingStoredFile), base64.",
    }
    data["variable"]["description"] = "A variable's value; an unset or empty one is left out."
    defs["EntityData"]["description"] = (
        "The `data` of a reply: one member, named for what the kind returns "
        "(docs/protocol.md, column Reply); `{}` for an unset variable."
    )
    fields = defs["Response"]["properties"]
    fields["error"]["description"] = '`""` on success, else the error, in Go\'s words.'
    fields["status"]["description"] = "Ours, on errors: the HTTP status of Asterisk's answer."
    fields["code"].update(
        description="Ours, on errors: a machine code (docs/protocol.md, Envelopes).",
        examples=sorted(code.value for code in ErrorCode),
    )
    fields["message"]["description"] = "Ours, on errors: Asterisk's own explanation."
    fields["data"]["description"] = "What the kind returns when it returns data."
    fields["key"]["description"] = "The key of the entity the kind acted on or created."
    fields["keys"]["description"] = "One key per entity a list kind found."
    defs["Response"]["description"] = (
        "A server's reply, on the request's reply subject. `error` is always written; `data`, "
        "`key` and `keys` only when set, and `status`, `code` and `message` (ours, which Go "
        "peers ignore) only on errors."
    )
    _describe_key(defs["Key"])
    return _document("response", "ari-proxy reply", "What a server answers to a request.", schema)


def _describe_key(key: Schema) -> None:
    key["description"] = (
        "An entity key (Go's `ari.Key`). Every member is left out when empty, so the empty "
        "key is `{}`; an empty member is a wildcard when keys are matched. A key with both "
        "`node` (the Asterisk entity ID) and `app` (the ARI application) is complete: its "
        "requests go to that one server."
    )
    key["properties"]["kind"]["examples"] = sorted(kind.value for kind in EntityKind)


def key_schema() -> Schema:
    schema = _message_schema(Key)
    _describe_key(schema["$defs"]["Key"])
    return _document(
        "key",
        "ari-proxy key",
        "The entity key of requests, replies and dialog bindings.",
        schema,
    )


def announcement_schema() -> Schema:
    schema = _message_schema(Announcement)
    defs = schema["$defs"]
    defs["Announcement"]["description"] = (
        "A server's announcement on `ari.announce` that it serves `application` on the "
        "Asterisk node `node` (its entity ID), one per application. `features` is ours "
        "(Go servers leave it out): `listen` says StasisStart events are also published on "
        "`ari.listen.<app>.<node>`."
    )
    defs["Announcement"]["properties"]["features"]["examples"] = [["listen"]]
    return _document(
        "announcement",
        "ari-proxy announcement",
        "What a server publishes when it is ready, on every ping and periodically.",
        schema,
    )


def event_schema() -> Schema:
    (_, components) = msgspec.json.schema_components([AnyMessage | ConnectionGap])
    types = sorted(name for name, d in components.items() if "type" in d.get("properties", {}))
    for model in components.values():
        fields = model.get("properties", {})
        # A Go server re-encodes events from its structs: an absent nested object, list or
        # map is `null` (and an absent entity an object of zero values, which fits as it is).
        for name, field in fields.items():
            if _holds_container(field):
                fields[name] = _nullable(field)
        assert not model.get("required") or model["required"] == ["type"], model["title"]
    dispatch = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"$ref": f"#/$defs/{name}"},
        }
        for name in types
    ]
    return _document(
        "event",
        "ari-proxy event",
        (
            "An ARI event on `ari.event.<application>.<node>`, or its copy on "
            "`ari.dialogevent.<dialog>` with `dialog` set. The body is Asterisk's JSON (from a "
            "Go server, re-encoded from Go's structs): `type`, `application`, `asterisk_id` "
            "and `timestamp` are always there and any other member is allowed, since newer "
            "Asterisks add members and types. Each type of ARI 22 (and our ConnectionGap) has "
            "its members in `$defs`, all optional; every nested object, list and map member "
            "also accepts `null`, which is how a Go server writes an absent one."
        ),
        {
            "type": "object",
            "required": ["type", "application", "asterisk_id", "timestamp"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "The event type; one `$defs` entry describes each known type.",
                    "examples": types,
                },
                "application": {
                    "type": "string",
                    "description": "The ARI application the event is for (the subject's `<application>`).",
                },
                "asterisk_id": {
                    "type": "string",
                    "description": "The entity ID of the Asterisk that raised it (the subject's `<node>`).",
                },
                "timestamp": {
                    "type": "string",
                    "pattern": f"^{_GO_LAYOUT.pattern}$",
                    "description": "When it happened, as `2006-01-02T15:04:05.000-0700`.",
                },
                "dialog": {
                    "type": "string",
                    "description": "Only on the copy sent to `ari.dialogevent.<dialog>`: the dialog.",
                },
            },
            "allOf": dispatch,
            "$defs": components,
        },
    )


GENERATORS: dict[str, Callable[[], Schema]] = {
    "request": request_schema,
    "response": response_schema,
    "key": key_schema,
    "announcement": announcement_schema,
    "event": event_schema,
}


def schema_path(name: str) -> Path:
    """Where the schema `name` (a `GENERATORS` key) is, relative to the repository."""
    return SCHEMAS / f"{name}.schema.json"


# --- docs/schemas.md -------------------------------------------------------------------------

_COVERS = {
    "request": "a request: `kind`, `key` and every payload member, on `ari.get`, `ari.data`, `ari.command`, `ari.create` (each also `.<app>` and `.<app>.<node>`) and `ari.ping`",
    "response": "a reply on the request's reply subject: `error`, `data` (with each entity member), `key`, `keys`, and our `status`, `code`, `message`",
    "key": "a key, as it appears in requests, replies and `data` entities",
    "announcement": "an announcement on `ari.announce`",
    "event": "an event on `ari.event.<app>.<node>` or `ari.dialogevent.<dialog>`: the envelope, and each known type's members in `$defs`",
}


def render_doc() -> str:
    example = json.dumps(EXAMPLE_REQUEST, separators=(",", ":"))
    rows = "\n".join(
        f"| [`{schema_path(name).name}`](../{schema_path(name).as_posix()}) | {_COVERS[name]} |"
        for name in GENERATORS
    )
    return f"""\
# JSON Schemas of the wire protocol

<!-- Generated by scripts/gen_schemas.py; do not edit. -->

The messages of [the wire protocol](protocol.md) as JSON Schemas (2020-12), for writing or checking
them in any language. They are generated from the types our code encodes and decodes with, so
they change only with the code.

| Schema | Covers |
|---|---|
{rows}

Each file stands alone (its `$defs` hold the nested types) and has an `$id` of the form
`{ID_PREFIX}<name>`.

## What they accept

- `required` lists the members Go and our peers always write (Go fields without `omitempty`),
  such as `kind` and `key` in a request and every member Go writes in a payload, such as
  `timeout` in `channel_dial`. Servers read an absent member as its zero value, so they accept
  more than the schemas do; a message that validates is as complete as a Go peer's would be.
- Members the schemas do not list are allowed, because every peer ignores them; a misspelt
  payload member therefore still validates, and the server then finds the payload missing.
- The schemas check shapes, not meanings: `kind` may be any string (an unknown kind is answered
  `Not implemented`), and a payload a kind needs is not required by the schema (each payload
  member's `description` names the kinds that need it).
- Events: a Go server re-encodes every event from its own structs, writing an absent nested
  object, list or map as `null` and an absent entity as an object of zero values (empty
  strings, `0`, `0001-01-01T00:00:00.000+0000`). The event schema therefore requires only the
  envelope (`type`, `application`, `asterisk_id`, `timestamp`) and accepts `null` for every
  nested object, list and map of a known type. Types it does not know (a newer Asterisk's)
  need only the envelope.

## Checking a message by hand

A request to answer a channel, as one would publish it with `nats req` or from the RabbitMQ
management UI:

```json
{example}
```

- NATS: `nats req 'ari.command.<app>.<node>' '{example}'`.
- RabbitMQ: publish to exchange `ari.request` with routing key `ari.command.<app>.<node>`,
  property `content_type` = `application/json`, and `reply_to` = a queue of yours, where the
  reply arrives (through the default exchange).

To validate a message before sending it, from the repository root, with Python's `jsonschema`
package:

```sh
echo '{example}' |
  python -c 'import json, sys, jsonschema; jsonschema.validate(json.load(sys.stdin), json.load(open("schemas/request.schema.json")))'
```

Silence means it is valid; otherwise the error names the member. Any validator of JSON Schema
2020-12 works the same way.
"""


# --- writing and checking --------------------------------------------------------------------


def render() -> dict[Path, str]:
    """Every generated file (relative to the repository) and its text."""
    out = {
        schema_path(name): json.dumps(make(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, make in GENERATORS.items()
    }
    out[DOC] = render_doc()
    return out


def check(root: Path = ROOT) -> list[str]:
    """What is out of date under `root`, one line each (empty when everything is current)."""
    problems = []
    outputs = render()
    for path, text in outputs.items():
        target = root / path
        if not target.exists():
            problems.append(f"{path} is missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{path} is out of date")
    for extra in sorted((root / SCHEMAS).glob("*.json")):
        if extra.relative_to(root) not in outputs:
            problems.append(f"{extra.relative_to(root)} is not generated any more")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(f"{problem}: run scripts/gen_schemas.py", file=sys.stderr)
        return 1 if problems else 0
    outputs = render()
    (ROOT / SCHEMAS).mkdir(exist_ok=True)
    for extra in (ROOT / SCHEMAS).glob("*.json"):
        if extra.relative_to(ROOT) not in outputs:
            extra.unlink()
    for path, text in outputs.items():
        (ROOT / path).write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(str(p) for p in outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
