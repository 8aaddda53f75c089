"""The package's structure: imports run one way, and packages meet at their public faces.

Every `import` of `ari_proxy` (at module level or inside a function) is read from the source.
The packages form layers (docs/architecture.md draws them); a module may import its own package
and the layers below, never one above, and never the private module of another package.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ari_proxy

PACKAGE = Path(ari_proxy.__file__).parent

# Bottom to top. A name is a sub-package or a top-level module of ari_proxy.
LAYERS: list[set[str]] = [
    {"_exceptions", "_backoff", "_redact", "_tls", "_version"},
    {"spec"},
    {"protocol"},
    {"events", "bus"},
    {"api"},
    {"ari", "client"},
    {"server", "_connect", "_serve"},
    {"__init__"},
    {"testing"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def unit_of(module: str) -> str:
    """`ari_proxy.bus._nats` -> `bus`; `ari_proxy._redact` -> `_redact`."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[str]:
    """The absolute `ari_proxy` modules a file imports (what it names, as far as it is a module
    or a package)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("ari_proxy")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("ari_proxy") and node.module is None:
                # `from .. import protocol`: the names are modules of the package.
                found += [f"{target}.{a.name}" for a in node.names]
            elif target.startswith("ari_proxy"):
                found.append(target)
                found += [
                    f"{target}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_layers_name_every_unit() -> None:
    units = {unit_of(module_name(p)) for p in SOURCES}
    assert units == set(LAYER), "add the new package to LAYERS (and to docs/architecture.md)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path: Path) -> None:
    here = unit_of(module_name(path))
    for target in imports_of(path):
        there = unit_of(target)
        if there == here:
            continue
        assert LAYER[there] < LAYER[here], f"{module_name(path)} imports {target} (upward)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_packages_meet_at_their_public_faces(path: Path) -> None:
    here = unit_of(module_name(path))
    for target in imports_of(path):
        parts = target.split(".")
        there = unit_of(target)
        if there == here or len(parts) < 3 or not parts[2].startswith("_"):
            continue
        pytest.fail(f"{module_name(path)} imports {target}: use ari_proxy.{there}'s public names")


@pytest.mark.parametrize(
    "name", sorted({module_name(p) for p in SOURCES if not p.name.startswith("__main__")})
)
def test_every_module_imports_on_its_own(name: str) -> None:
    # A fresh interpreter would show a cycle as an ImportError; in-process, importlib at least
    # loads each module by name in an order that is not the package's own.
    importlib.import_module(name)
