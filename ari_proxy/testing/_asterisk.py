"""Real Asterisk 22 instances for tests and demos, run from the cached Debian sid root.

Each instance runs `asterisk -f` inside the root as the root's own `asterisk` user, with its own
configuration and state directories (see `_configs`). Running instances are recorded in a state
directory on the host so that `down` and `status` work from another process, and `/proc` inside the
root stays mounted exactly as long as one instance runs.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._configs import InstanceSpec, render_configs
from ._root import DEFAULT_ROOT, SandboxError, ensure_root, is_mounted

if TYPE_CHECKING:
    from ._tls import Certificates

__all__ = [
    "Instance",
    "InstanceSpec",
    "cli",
    "free_port",
    "make_spec",
    "running",
    "start",
    "stop",
    "stop_all",
]

logger = logging.getLogger(__name__)

STATE_DIR = Path(os.environ.get("ARI_PROXY_SANDBOX_STATE", "/run/ari-proxy-sandbox"))
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
# Instances this process started: kept so they are reaped (no zombies, no ResourceWarning).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class Instance:
    """A running Asterisk instance: where to reach it and how to log in."""

    spec: InstanceSpec
    root: Path
    pid: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def http_url(self) -> str:
        """ARI REST base URL, e.g. `http://127.0.0.1:8088/ari`."""
        return f"http://127.0.0.1:{self.spec.http_port}/ari"

    @property
    def ws_url(self) -> str:
        """ARI WebSocket URL for events."""
        return f"ws://127.0.0.1:{self.spec.http_port}/ari/events"

    @property
    def https_url(self) -> str:
        """ARI REST base URL over TLS (an instance made with `make_spec(..., tls=...)`)."""
        if not self.spec.https_port:
            raise SandboxError(f"instance {self.name!r} has no TLS listener (make_spec tls=)")
        return f"https://127.0.0.1:{self.spec.https_port}/ari"

    @property
    def wss_url(self) -> str:
        """ARI events WebSocket URL over TLS."""
        return self.https_url.replace("https://", "wss://", 1) + "/events"

    @property
    def username(self) -> str:
        return self.spec.username

    @property
    def password(self) -> str:
        return self.spec.password

    @property
    def outbound_username(self) -> str:
        """The user Asterisk presents on its outbound WebSocket."""
        return self.spec.outbound_username

    @property
    def outbound_password(self) -> str:
        """The password Asterisk presents on its outbound WebSocket."""
        return self.spec.outbound_password

    @property
    def entity_id(self) -> str:
        return self.spec.entity_id

    @property
    def sip_port(self) -> int:
        return self.spec.sip_port

    @property
    def log_path(self) -> Path:
        """Asterisk's console output on the host."""
        return _state_path(self.name).with_suffix(".log")

    def host_path(self, inside: str) -> Path:
        """Map a path inside the root to the host."""
        return self.root / inside.lstrip("/")

    def answers(self, timeout: float = 0.5) -> bool:
        """Whether ARI answers `GET /asterisk/ping` now (blocking: call it from a thread in
        an event loop)."""
        try:
            _ari_get(self.spec, "/asterisk/ping", timeout=timeout)
        except (OSError, ValueError):
            return False
        return True

    def cli(self, command: str, timeout: float = 15) -> str:
        """Run an Asterisk CLI command against this instance and return its output."""
        return cli(self, command, timeout=timeout)

    def get(self, path: str, timeout: float = 5) -> object:
        """GET an ARI path (such as `/asterisk/info`) with plain urllib and decode the JSON."""
        return _ari_get(self.spec, path, timeout)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a loopback port that is free right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_spec(
    name: str,
    *,
    http_port: int | None = None,
    sip_port: int | None = None,
    entity_id: str | None = None,
    default_app: str = "test",
    outbound_url: str = "",
    outbound_apps: Sequence[str] = (),
    tls: Certificates | None = None,
) -> InstanceSpec:
    """Build an `InstanceSpec`, choosing free ports and a stable entity ID from the name.

    With `outbound_url` the instance also dials that URL with an outbound persistent ARI
    WebSocket serving `outbound_apps` (docs/transports.md); the password it presents is
    derived from the name like the ARI user's. With `tls`, ARI also listens for HTTPS and
    WSS on a free port (`Instance.https_url`) with the certificates' server certificate.
    """
    if outbound_url and not outbound_apps:
        raise SandboxError("an outbound WebSocket needs at least one application")
    if not _NAME.match(name):
        raise SandboxError(f"instance name {name!r} must match {_NAME.pattern}")
    digest = hashlib.sha256(name.encode()).digest()
    if entity_id is None:
        entity_id = "02:" + ":".join(f"{b:02x}" for b in digest[:5])
    rtp_base = 20000 + (int.from_bytes(digest[5:7], "big") % 400) * 100
    return InstanceSpec(
        name=name,
        http_port=http_port or free_port(),
        sip_port=sip_port or free_port(socket.SOCK_DGRAM),
        rtp_start=rtp_base,
        rtp_end=rtp_base + 98,
        entity_id=entity_id,
        password="sandbox-" + digest[7:15].hex(),
        default_app=default_app,
        outbound_url=outbound_url,
        outbound_apps=",".join(outbound_apps),
        outbound_password="outbound-" + digest[15:23].hex() if outbound_url else "",
        https_port=free_port() if tls is not None else 0,
        tls_cert_source=tls.server_cert if tls is not None else "",
        tls_key_source=tls.server_key if tls is not None else "",
    )


def _state_path(name: str) -> Path:
    return STATE_DIR / f"{name}.json"


@contextlib.contextmanager
def _state_lock() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int, conf_path: str | None = None) -> bool:
    """Whether `pid` is a live (not zombie) Asterisk, optionally with that config file."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if not any(arg.endswith(b"asterisk") for arg in cmdline):
        return False
    return conf_path is None or conf_path.encode() in cmdline


def _load(path: Path) -> Instance | None:
    try:
        raw = json.loads(path.read_text())
        return Instance(spec=InstanceSpec(**raw["spec"]), root=Path(raw["root"]), pid=raw["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running() -> list[Instance]:
    """Instances recorded in the state directory whose process is alive."""
    if not STATE_DIR.exists():
        return []
    found = []
    for path in sorted(STATE_DIR.glob("*.json")):
        inst = _load(path)
        if inst and _alive(inst.pid, inst.spec.conf_path):
            found.append(inst)
    return found


def _asterisk_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2]), int(parts[3])
    raise SandboxError(f"no asterisk user in {root}/etc/passwd")


def _module_dir(root: Path) -> str:
    text = (root / "etc/asterisk/asterisk.conf").read_text()
    match = re.search(r"^\s*astmoddir\s*=>\s*(\S+)", text, re.M)
    if not match:
        raise SandboxError("cannot find astmoddir in Debian's asterisk.conf")
    return match.group(1)


def _prepare(spec: InstanceSpec, root: Path) -> None:
    uid, gid = _asterisk_ids(root)
    # A fresh instance every time: no astdb, recordings or logs from an earlier run.
    for inside in (spec.lib_dir, spec.spool_dir, spec.log_dir, spec.cache_dir, spec.run_dir):
        shutil.rmtree(root / inside.lstrip("/"), ignore_errors=True)
    etc = root / spec.etc_dir.lstrip("/")
    shutil.rmtree(etc, ignore_errors=True)
    shutil.copytree(root / "etc/asterisk", etc, symlinks=True)
    for name, content in render_configs(spec, _module_dir(root)).items():
        (etc / name).write_text(content)
    if spec.https_port:
        tls = root / spec.tls_dir.lstrip("/")
        tls.mkdir()
        shutil.copyfile(spec.tls_cert_source, tls / "server.pem")
        shutil.copyfile(spec.tls_key_source, tls / "server-key.pem")
        os.chmod(tls / "server-key.pem", 0o600)  # owned by the instance's user, below
    for inside in spec.own_dirs:
        # /run in the root is a real directory (the root's /var/run links to it), so creating
        # the run directory under root/run never touches the host's /run.
        path = root / inside.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
    for inside in spec.own_dirs:
        for dirpath, dirnames, filenames in os.walk(root / inside.lstrip("/")):
            os.chown(dirpath, uid, gid)
            for entry in (*dirnames, *filenames):
                os.lchown(os.path.join(dirpath, entry), uid, gid)


def _ari_get(spec: InstanceSpec, path: str, timeout: float) -> object:
    token = base64.b64encode(f"{spec.username}:{spec.password}".encode()).decode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{spec.http_port}/ari{path}",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(spec: InstanceSpec, root: Path = DEFAULT_ROOT, timeout: float = 60) -> Instance:
    """Start one Asterisk instance and wait until `GET /ari/asterisk/ping` answers.

    Raises:
        SandboxError: the root could not be built, the name or a port is taken, or Asterisk did
            not answer in time (the message carries the tail of its console output).
    """
    ensure_root(root)
    with _state_lock():
        existing = _load(_state_path(spec.name))
        if existing and _alive(existing.pid, existing.spec.conf_path):
            raise SandboxError(f"instance {spec.name!r} already runs (pid {existing.pid})")
        for port in (spec.http_port, spec.https_port):
            if port and _port_open(port):
                raise SandboxError(f"port {port} is already in use")
        _prepare(spec, root)
        if not is_mounted(root / "proc"):
            subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        log_path = _state_path(spec.name).with_suffix(".log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    "chroot",
                    "--userspec=asterisk:asterisk",
                    str(root),
                    "/usr/sbin/asterisk",
                    "-f",
                    "-n",
                    "-C",
                    spec.conf_path,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        instance = Instance(spec=spec, root=root, pid=proc.pid)
        _state_path(spec.name).write_text(
            json.dumps({"spec": asdict(spec), "root": str(root), "pid": proc.pid})
        )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            _forget(spec.name)
            raise SandboxError(
                f"Asterisk {spec.name!r} exited with {proc.returncode}:\n{_tail(log_path)}"
            )
        try:
            _ari_get(spec, "/asterisk/ping", timeout=2)
            if not spec.https_port or _port_open(spec.https_port):
                break
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            stop(spec.name)
            raise SandboxError(f"Asterisk {spec.name!r} did not answer ARI:\n{_tail(log_path)}")
        time.sleep(0.1)
    logger.info("Asterisk %s up on port %d (entity %s)", spec.name, spec.http_port, spec.entity_id)
    return instance


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console output)"


def cli(instance: Instance, command: str, timeout: float = 15) -> str:
    """Run one Asterisk CLI command (`asterisk -rx`) against a running instance."""
    result = subprocess.run(
        [
            "chroot",
            str(instance.root),
            "/usr/sbin/asterisk",
            "-C",
            instance.spec.conf_path,
            "-rx",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise SandboxError(f"asterisk -rx {command!r} failed: {result.stderr.strip()}")
    return result.stdout


def _forget(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _state_path(name).unlink()


def _wait_gone(pid: int, conf_path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, conf_path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(name: str, timeout: float = 20) -> bool:
    """Stop instance `name`; return whether it was running.

    Asterisk is asked to stop through its CLI, then signalled if it does not. When the last
    instance of a root has stopped, `/proc` inside the root is unmounted.
    """
    inst = _load(_state_path(name))
    if inst is None:
        return False
    was_running = _alive(inst.pid, inst.spec.conf_path)
    if was_running:
        with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
            cli(inst, "core stop now", timeout=10)
        if not _wait_gone(inst.pid, inst.spec.conf_path, timeout / 2):
            with contextlib.suppress(ProcessLookupError):
                os.kill(inst.pid, signal.SIGTERM)
            if not _wait_gone(inst.pid, inst.spec.conf_path, timeout / 2):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(inst.pid, signal.SIGKILL)
                _wait_gone(inst.pid, inst.spec.conf_path, 5)
    with _state_lock():
        _forget(name)
        if not any(other.root == inst.root for other in running()):
            proc = inst.root / "proc"
            if is_mounted(proc):
                subprocess.run(["umount", str(proc)], check=False)
                if is_mounted(proc):
                    subprocess.run(["umount", "-l", str(proc)], check=False)
    deadline = time.monotonic() + 5
    while _port_open(inst.spec.http_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return was_running


def stop_all() -> list[str]:
    """Stop every recorded instance; return their names."""
    names = [p.stem for p in sorted(STATE_DIR.glob("*.json"))] if STATE_DIR.exists() else []
    for name in names:
        stop(name)
    return names
