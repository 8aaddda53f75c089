"""The documentation site as `scripts/docs` builds it from this checkout."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Build:
    """What `scripts/docs` did: its exit status and output, and the site it wrote."""

    returncode: int
    output: str
    site: Path


def build() -> Build:
    """Run `scripts/docs` (blocking: call it outside the event loop, or in a thread)."""
    run = subprocess.run(
        [str(ROOT / "scripts/docs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Build(run.returncode, run.stdout + run.stderr, ROOT / "site")
