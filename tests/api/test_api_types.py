"""The public API's overloads type-check as documented (mypy --strict on a sample)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

SAMPLE = Path(__file__).with_name("typed_ergonomics.py")


def test_the_ergonomic_overloads_resolve_to_their_types() -> None:
    out, err, status = api.run(["--strict", "--no-incremental", str(SAMPLE)])
    assert status == 0, out + err
