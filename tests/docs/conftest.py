"""The built documentation site, shared by the tests that check it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Build:
    """What `scripts/docs` did: its exit status and output, and the site it wrote."""

    returncode: int
    output: str
    site: Path


@pytest.fixture(scope="session")
def built_site() -> Build:
    """The site as `scripts/docs` builds it from this checkout (once per session)."""
    run = subprocess.run(
        [str(ROOT / "scripts/docs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Build(run.returncode, run.stdout + run.stderr, ROOT / "site")
