"""The public face of ari_proxy.protocol and its sans-I/O rule."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import ari_proxy.protocol as protocol

PACKAGE_DIR = Path(protocol.__file__).parent
FORBIDDEN = {"asyncio", "aiohttp", "nats", "aio_pika", "aiormq", "socket", "ssl"}


def isort_order(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_resolves() -> None:
    assert protocol.__all__ == sorted(protocol.__all__, key=isort_order)
    assert len(set(protocol.__all__)) == len(protocol.__all__)
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None


def test_all_reexports_every_module_export() -> None:
    exported: set[str] = set()
    for module_info in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        module = importlib.import_module(f"ari_proxy.protocol.{module_info.name}")
        names = getattr(module, "__all__", None)
        assert names is not None, f"{module_info.name} has no __all__"
        for name in names:
            assert getattr(protocol, name) is getattr(module, name)
        exported.update(names)
    assert exported == set(protocol.__all__)


def test_no_io_imports() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & FORBIDDEN, f"{path.name} imports {roots & FORBIDDEN}"
