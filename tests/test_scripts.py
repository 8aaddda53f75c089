"""`scripts/bootstrap` waits for another apt instead of failing (with a fake `apt-get`: the
real lock is the machine's). What `scripts/run` promises is tested with the demo it runs
(tests/examples)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = (ROOT / "scripts/bootstrap").read_text()


def apt_get_function() -> str:
    """`APT_LOCK_TIMEOUT=...` and `apt_get() {...}` as written in scripts/bootstrap."""
    match = re.search(r"^APT_LOCK_TIMEOUT=.*?^}\n", BOOTSTRAP, re.MULTILINE | re.DOTALL)
    assert match is not None, "scripts/bootstrap defines apt_get"
    return match.group()


def fake_apt(tmp_path: Path, busy: int, error: str) -> Path:
    """An `apt-get` that fails `busy` times with `error`, then succeeds; it logs its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(
        f"""#!/bin/bash
echo "$*" >> {tmp_path}/calls
n=$(wc -l < {tmp_path}/calls)
if [ "$n" -le {busy} ]; then echo "{error}" >&2; exit 100; fi
echo done
"""
    )
    script.chmod(0o755)
    return bin_dir


def run_apt_get(tmp_path: Path, bin_dir: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    program = f"set -euo pipefail\n{apt_get_function()}\napt_get update -qq\n"
    return subprocess.run(
        ["bash", "-c", program],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "APT_LOCK_TIMEOUT": str(timeout)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


LOCKED = (
    "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)\n"
    "E: Unable to lock directory /var/lib/apt/lists/"
)


def test_bootstrap_waits_for_the_apt_lock(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_apt_get(tmp_path, fake_apt(tmp_path, busy=2, error=LOCKED), timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert time.monotonic() - started >= 3.5  # two waits of 2 s
    assert done.stderr.count("apt is busy (held by process 4242 (apt-get)); waiting up to 30s") == 1
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-o DPkg::Lock::Timeout=30 update -qq"] * 3


def test_bootstrap_gives_up_when_the_lock_stays_taken(tmp_path: Path) -> None:
    done = run_apt_get(tmp_path, fake_apt(tmp_path, busy=100, error=LOCKED), timeout=3)
    assert done.returncode == 1
    assert "Could not get lock" in done.stderr


def test_other_apt_failures_are_not_retried(tmp_path: Path) -> None:
    done = run_apt_get(
        tmp_path, fake_apt(tmp_path, busy=1, error="E: Unable to locate package x"), 30
    )
    assert done.returncode == 1
    assert "Unable to locate package x" in done.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == 1


def test_every_apt_get_of_bootstrap_waits_for_the_lock() -> None:
    body = BOOTSTRAP.replace(apt_get_function(), "")
    commands = [
        line
        for line in body.splitlines()
        if re.search(r"(^|[\s;|&(])apt-get\s", line) and not line.lstrip().startswith(("#", "echo"))
    ]
    assert commands == [], "run apt-get through apt_get"
