"""The kind table covers ARI, and the interface covers the kind table."""

from __future__ import annotations

import ast
from pathlib import Path

import ari_proxy
from ari_proxy.protocol import KINDS
from ari_proxy.spec._operations import OPERATIONS

PACKAGE = Path(ari_proxy.__file__).parent

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
