"""The cached Debian sid root that Asterisk 22 runs from.

`debootstrap --variant=minbase` installs Debian's own Asterisk 22 build into a directory outside the
checkout (default `/var/cache/ari-proxy/asterisk-sid`), so a fresh clone reuses it. The root is
rebuilt when it is missing or broken; a stamp file records the package set it was built with.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_ROOT",
    "PACKAGES",
    "SandboxError",
    "ensure_root",
    "is_mounted",
    "root_is_valid",
]

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path(os.environ.get("ARI_PROXY_SANDBOX_ROOT", "/var/cache/ari-proxy/asterisk-sid"))
PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-config",
    "asterisk-core-sounds-en-gsm",
)
_STAMP = ".ari-proxy-sandbox"


class SandboxError(RuntimeError):
    """The Asterisk sandbox could not be built, started or stopped."""


def _stamp_text() -> str:
    return "suite=sid variant=minbase include=" + ",".join(PACKAGES) + "\n"


def root_is_valid(root: Path) -> bool:
    """Return whether `root` holds a complete sandbox built with today's package set."""
    stamp = root / _STAMP
    try:
        if stamp.read_text() != _stamp_text():
            return False
    except OSError:
        return False
    needed = ("usr/sbin/asterisk", "etc/asterisk/asterisk.conf", "etc/passwd", "usr/share/asterisk")
    if not all((root / p).exists() for p in needed):
        return False
    probe = subprocess.run(
        ["chroot", str(root), "/usr/sbin/asterisk", "-V"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.startswith("Asterisk 22")


def is_mounted(path: Path) -> bool:
    """Return whether something is mounted exactly at `path`."""
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts if line.strip())


def _unmount_all_below(path: Path) -> None:
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.strip()]
    below = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    for point in sorted(below, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    # Never let a mounted /proc (or anything else) be walked by rm.
    _unmount_all_below(path)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    logger.info("installing debootstrap with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True, env=env)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_root(root: Path = DEFAULT_ROOT) -> Path:
    """Return `root`, building it with debootstrap first if it is missing or broken.

    Raises:
        SandboxError: debootstrap failed, or the result does not run Asterisk 22.
    """
    if os.geteuid() != 0:
        raise SandboxError("the Asterisk sandbox needs root (debootstrap, chroot, mount)")
    if root_is_valid(root):
        return root
    with _locked(root):
        if root_is_valid(root):  # another process built it while we waited
            return root
        staging = root.parent / f"{root.name}.building"
        _remove_tree(staging)
        _ensure_debootstrap()
        logger.info("building the Asterisk sandbox in %s (about a minute)", root)
        cmd = [
            "debootstrap",
            "--variant=minbase",
            "--include=" + ",".join(PACKAGES),
            "sid",
            str(staging),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise SandboxError(f"debootstrap failed ({result.returncode}):\n{tail}")
        (staging / _STAMP).write_text(_stamp_text())
        if not root_is_valid(staging):
            raise SandboxError(f"{staging} was built but does not run Asterisk 22")
        _remove_tree(root)
        staging.rename(root)
        logger.info("Asterisk sandbox ready in %s", root)
    return root
