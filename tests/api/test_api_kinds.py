"""The kind table covers ARI, the interface covers the kind table, and what the table derives
(from kind names and the ARI operation table) agrees with ARI and with the Go reference."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ari_proxy
from ari_proxy.protocol import (
    KINDS,
    PAYLOAD_TYPES,
    EntityData,
    EntityKind,
    Key,
    KindSpec,
    Reply,
)
from ari_proxy.protocol._kind_names import KindName
from ari_proxy.protocol._kinds import Invocation
from ari_proxy.spec import OPERATIONS, build_path, build_query

PACKAGE = Path(ari_proxy.__file__).parent
ROOT = PACKAGE.parent

# ARI operations reached through an equivalent: we always choose IDs client-side, so the
# "...WithId" operation does what the ID-less one does.
EQUIVALENT = {
    "channels.originate": "channels.originateWithId",
    "channels.play": "channels.playWithId",
    "channels.snoopChannel": "channels.snoopChannelWithId",
    "bridges.create": "bridges.createWithId",
    "bridges.play": "bridges.playWithId",
}
# Kinds no method sends, and why.
NO_CALLER = {"BridgeUnsubscribe": "a no-op the Go server answers; kept so Go clients get ok"}


def _string_literals(*folders: str) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in (PACKAGE / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
    return found


def test_every_ari_operation_has_a_kind() -> None:
    used = {k.operation for k in KINDS.values()} | {k.check for k in KINDS.values()}
    missing = [
        name
        for name, op in OPERATIONS.items()
        if not op.is_websocket and name not in used and EQUIVALENT.get(name) not in used
    ]
    assert missing == []
    assert len(OPERATIONS) == 109


def test_every_kind_has_a_caller() -> None:
    literals = _string_literals("api", "ari", "client")
    missing = [name for name in KINDS if name not in literals and name not in NO_CALLER]
    assert missing == []


def test_every_kind_names_a_real_operation() -> None:
    for kind in KINDS.values():
        for name in (kind.operation, kind.check):
            if name is not None:
                assert name in OPERATIONS, (kind.name, name)
        # An operation always comes with its arguments, and arguments with an operation.
        assert (kind.args is None) == (kind.operation is None), kind.name


def test_go_kinds_are_all_there() -> None:
    go = [k for k in KINDS.values() if k.go]
    assert len(go) == 111
    ours = [k.name for k in KINDS.values() if not k.go]
    assert len(ours) == len(set(ours)) and ours


def _isort_style(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then everything else.
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_public_names_are_complete_and_sorted() -> None:
    import importlib

    for name in (
        "ari_proxy",
        "ari_proxy.api",
        "ari_proxy.client",
        "ari_proxy.ari",
        "ari_proxy.protocol",
    ):
        module = importlib.import_module(name)
        names = module.__all__
        assert names == sorted(names, key=_isort_style), module.__name__
        for name in names:
            assert hasattr(module, name), (module.__name__, name)


def test_every_package_imports_on_its_own() -> None:
    import subprocess
    import sys

    for module in (
        "ari_proxy.ari.models",
        "ari_proxy.ari",
        "ari_proxy.api",
        "ari_proxy.client",
        "ari_proxy.server",
        "ari_proxy.bus",
        "ari_proxy.protocol",
        "ari_proxy.testing",
    ):
        # A fresh interpreter per module: an import cycle shows only on a cold start.
        code = f"import {module}"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, (module, done.stderr[-500:])


# --- the facts the table derives ----------------------------------------------------------------


def _gen_protocol_doc() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_protocol_doc", ROOT / "scripts/gen_protocol_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kind_name_type_is_the_table() -> None:
    assert sorted(typing.get_args(KindName)) == sorted(KINDS)
    current = (PACKAGE / "protocol/_kind_names.py").read_text()
    assert current == _gen_protocol_doc().render_kind_names(), "run scripts/gen_protocol_doc.py"


def _filled(tp: Any) -> Any:
    """An instance of a payload struct with every field set to a plausible non-empty value."""
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(tp):
        t = field.type
        if type(None) in typing.get_args(t):
            t = next(a for a in typing.get_args(t) if a is not type(None))
        origin = typing.get_origin(t) or t
        if t is str:
            values[field.name] = f"{field.name}-1"
        elif t is bool:
            values[field.name] = True
        elif t is int:
            values[field.name] = 2_000_000_000  # 2 s as a Go duration
        elif origin is dict:
            values[field.name] = {"a": "1"}
        elif origin in (list, tuple):
            item = typing.get_args(t)[0]
            struct = isinstance(item, type) and issubclass(item, msgspec.Struct)
            values[field.name] = origin([_filled(item) if struct else "x"])
        elif isinstance(t, type) and issubclass(t, msgspec.Struct):
            values[field.name] = _filled(t)
    return tp(**values)


def _invocation(spec: KindSpec) -> Invocation:
    """A request of `spec`'s kind that the executor accepts: a key of its entity, every payload
    field set."""
    ident = {"endpoint": "PJSIP/alice", "config": "res_pjsip/endpoint/alice"}.get(
        spec.entity, "id-1"
    )
    key = Key(spec.entity, ident, "node-1", "dialog-1", "app-1")
    payload = _filled(PAYLOAD_TYPES[spec.payload]) if spec.payload else None
    return Invocation(spec, key, payload, "app-1", "node-1", "generated-1")


WITH_OPERATION = sorted(name for name, spec in KINDS.items() if spec.operation)


@pytest.mark.parametrize("name", WITH_OPERATION)
def test_arguments_are_the_operations_parameters(name: str) -> None:
    # Path parameter names come from the operation, so only the values can be wrong: too few,
    # too many, or ones `build_path` refuses. Query names and types are the operation's too.
    spec = KINDS[name]
    assert spec.operation is not None and spec.args is not None
    op = OPERATIONS[spec.operation]
    invocation = _invocation(spec)
    assert spec.validate is None or spec.validate(invocation) is None
    args = spec.args(invocation)
    assert tuple(args.path) == op.path_params
    assert all(args.path.values())
    build_path(op, args.path)
    build_query(op, args.query)
    assert args.body is None or op.body is not None, "the operation takes no body"


def test_checks_read_the_entity_the_operation_acts_on() -> None:
    checked = [spec for spec in KINDS.values() if spec.check is not None]
    assert checked
    for spec in checked:
        check = OPERATIONS[spec.check or ""]
        if spec.operation is None and spec.binds is not None:
            # A binding (`...Subscribe`, `ListenTake`) checks that its entity exists.
            assert check.method == "GET" and len(check.path_params) == 1, spec.name
            assert check.path.split("/")[1].rstrip("s") == spec.entity.replace("live", ""), (
                spec.name
            )
            continue
        # A stage checks for the kind it stages.
        op = OPERATIONS[spec.operation or KINDS[spec.name.replace("Stage", "", 1)].operation or ""]
        assert check.method == "GET" and check.path_params == op.path_params[:1], spec.name
        assert op.path.startswith(check.path + "/"), spec.name
        assert spec.wrap.startswith("failed to get data: Error getting data for "), spec.name


def test_stage_kinds_are_the_kinds_they_stage_without_the_call() -> None:
    stages = [spec for spec in KINDS.values() if "Stage" in spec.name]
    assert len(stages) == 8
    for stage in stages:
        staged = KINDS[stage.name.replace("Stage", "", 1)]
        assert stage.operation is None and stage.args is None, stage.name
        for attr in (
            "entity",
            "needs_id",
            "payload",
            "payload_required",
            "result",
            "result_id",
            "generate",
            "binds",
            "validate",
            "go",
        ):
            assert getattr(stage, attr) == getattr(staged, attr), (stage.name, attr)
        # A stage on an existing entity only checks it exists; one of a new entity is a create.
        expected = "get" if staged.needs_id else "create"
        assert stage.cls.value == expected, stage.name
        assert (stage.check is not None) == staged.needs_id, stage.name
        # Go's StageRecord answers with the request key retyped as the recording's, dialog kept
        # (the recordings cannot show it: their keys have no dialog); other stages answer as the
        # kind they stage.
        stage_record = stage.name.endswith("StageRecord")
        assert stage.reply is (Reply.KEY_REQUEST if stage_record else staged.reply), stage.name


ENTITY_KINDS = {kind.value for kind in EntityKind}


def test_entities_are_entity_kinds_as_plain_strings() -> None:
    for spec in KINDS.values():
        for value in (spec.entity, spec.result):
            assert type(value) is str, spec.name  # keys built from them print as plain strings
            assert value in ENTITY_KINDS | {"", "userevent"}, (spec.name, value)
        assert spec.needs_id <= bool(spec.entity), spec.name


def test_data_replies_name_an_entity_data_field() -> None:
    fields = set(EntityData.__struct_fields__)
    for spec in KINDS.values():
        assert (spec.reply is Reply.DATA) == bool(spec.data), spec.name
        assert not spec.data or spec.data in fields, spec.name


def test_list_replies_list_the_keys_entity() -> None:
    for spec in KINDS.values():
        if spec.reply is Reply.KEYS:
            assert spec.cls.value == "get" and not spec.needs_id, spec.name
            assert spec.result == spec.entity and isinstance(spec.result_id, str), spec.name


def _go_exchanges() -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(request body, reply body, note) of every request the Go client made in the recordings."""
    found = []
    for name in ("go-v5-nats.jsonl", "go-v5-rabbitmq.jsonl"):
        by_seq: dict[int, dict[str, Any]] = {}
        for line in (Path(os.environ["ARI_PROXY_VECTORS"]) / name).read_text().splitlines():
            vector = json.loads(line)
            by_seq[vector["seq"]] = vector
            request = by_seq.get(vector.get("for_seq", -1))
            if vector["role"] == "reply" and request and isinstance(request["body"], dict):
                found.append((request, vector["body"], request.get("note", "")))
    return found


def test_the_go_recordings_agree_with_the_derived_facts() -> None:
    # The Go server's replies show each Go kind's class (the subject it was sent on), entity,
    # reply shape, result kinds and error wording: all derived here, none written per row.
    seen = set()
    for request, reply, note in _go_exchanges():
        spec = KINDS.get(request["body"].get("kind", ""))
        if spec is None or not spec.go:
            continue
        seen.add(spec.name)
        subject_class = request["subject"].split(".")[1]
        if "class is ignored" not in note:
            assert subject_class == spec.cls.value, (spec.name, request["seq"])
        error = reply.get("error", "")
        if error.startswith("failed to get data"):
            assert spec.wrap.startswith("failed to get data"), spec.name
            assert error.startswith(spec.wrap.split("'{id}'")[0]), spec.name
            continue
        if error:
            continue
        key = request["body"].get("key") or {}
        assert key.get("kind", spec.entity) == spec.entity, (spec.name, request["seq"])
        members = {m for m in ("data", "key", "keys") if m in reply}
        expected = {
            Reply.OK: set(),
            Reply.DATA: {"data"},
            Reply.VARIABLE: {"data"},
            Reply.KEY_REQUEST: {"key"},
            Reply.KEY_RESULT: {"key"},
            Reply.KEYS: {"keys"} if reply.get("keys") else set(),
        }[spec.reply]
        assert members == expected, (spec.name, request["seq"])
        if spec.reply is Reply.DATA:
            assert spec.data in reply["data"], spec.name
        if spec.reply in (Reply.KEY_REQUEST, Reply.KEY_RESULT) and spec.result:
            assert reply["key"]["kind"] == spec.result, spec.name
        if spec.reply is Reply.KEY_REQUEST:  # the request key, dialog kept
            assert reply["key"].get("dialog") == key.get("dialog"), (spec.name, request["seq"])
        if spec.reply is Reply.KEY_RESULT:  # a new key, no dialog
            assert "dialog" not in reply["key"], (spec.name, request["seq"])
        for listed in reply.get("keys", []):
            assert listed["kind"] == spec.result, spec.name
    assert len(seen) == 111
