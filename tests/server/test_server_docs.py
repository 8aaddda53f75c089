"""The server's docs stay in step with the code they describe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ari_proxy.server import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_protocol_doc_is_generated_from_the_kind_table() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_protocol_doc", ROOT / "scripts/gen_protocol_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert (ROOT / "docs/protocol.md").read_text() == text, "run scripts/gen_protocol_doc.py"
    from ari_proxy.protocol import KINDS

    for name in KINDS:
        assert f"**{name}**" in text


def test_configuration_doc_lists_every_setting() -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text and f"`{setting.env}`" in text, setting.name


def test_operations_doc_lists_every_counter() -> None:
    from ari_proxy.server import Counters

    text = (ROOT / "docs/operations.md").read_text()
    for name in Counters.__dataclass_fields__:
        assert f"`{name}`" in text, name
