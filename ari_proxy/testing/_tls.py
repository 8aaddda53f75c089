"""Real TLS for tests: a certificate authority made on the spot, and buses that speak TLS with it.

`Certificates` writes a fresh CA (with `trustme`), a server certificate for 127.0.0.1 and
localhost, and a client certificate, as PEM files in a private folder. `TlsNats` runs a
`nats-server` that speaks only TLS with them (and can require client certificates);
`TlsRabbitMQ` runs a second RabbitMQ node, beside the machine's, whose only listener is
AMQPS (`RabbitMQNode` the same with plain AMQP, for faults done to a broker of one's own).
Both take free ports and leave nothing behind when closed.

```python
with Certificates() as certs, TlsNats(certs) as nats:
    client = await ari_proxy.connect(nats.url, application="a", tls_ca_file=certs.ca)
```
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ._root import SandboxError
from ._services import _free_ports, _wait_port, nats_server_binary

__all__ = ["Certificates", "RabbitMQNode", "TlsNats", "TlsRabbitMQ"]


@dataclass
class Certificates:
    """A new CA and the certificates it signed, as PEM files (paths as strings, the way the
    `tls_*_file` settings take them). `other_ca` is a second, unrelated CA: a client given it
    must refuse the server."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ari-proxy-tls-")))

    def __post_init__(self) -> None:
        import trustme  # a test dependency, imported when certificates are asked for

        ca, other = trustme.CA(), trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        client = ca.issue_cert("ari-proxy-test-client")
        ca.cert_pem.write_to_path(self.ca)
        other.cert_pem.write_to_path(self.other_ca)
        server.cert_chain_pems[0].write_to_path(self.server_cert)
        server.private_key_pem.write_to_path(self.server_key)
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        client.private_key_pem.write_to_path(self.client_key)
        os.chmod(self.folder, 0o755)  # a broker running as its own user reads them

    def _path(self, name: str) -> str:
        return str(self.folder / name)

    @property
    def ca(self) -> str:
        return self._path("ca.pem")

    @property
    def other_ca(self) -> str:
        return self._path("other-ca.pem")

    @property
    def server_cert(self) -> str:
        return self._path("server.pem")

    @property
    def server_key(self) -> str:
        return self._path("server-key.pem")

    @property
    def client_cert(self) -> str:
        return self._path("client.pem")

    @property
    def client_key(self) -> str:
        return self._path("client-key.pem")

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TlsNats:
    """A `nats-server` on a free loopback port that accepts only TLS, with `certs`' server
    certificate; with `verify`, it also requires a client certificate signed by the CA."""

    certs: Certificates
    verify: bool = False
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def start(self) -> Self:
        [self.port] = _free_ports(1)
        config = Path(self.certs.folder) / f"nats-{self.port}.conf"
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            "tls {\n"
            f'  cert_file: "{self.certs.server_cert}"\n'
            f'  key_file: "{self.certs.server_key}"\n'
            f'  ca_file: "{self.certs.ca}"\n'
            f"  verify: {'true' if self.verify else 'false'}\n"
            "  timeout: 2\n"
            "}\n"
        )
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port("127.0.0.1", self.port, 20, "nats-server (TLS)")
        return self

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RabbitMQNode:
    """A RabbitMQ node of its own (the machine's keeps running) on a free loopback port:
    plain AMQP, or with `certs` only AMQPS with their server certificate; guest/guest may
    connect from anywhere. Faults may be done to it (`ctl("stop_app")`, `kill()`) without
    disturbing other users of the machine's broker.

    It runs as the broker's user from a private folder, so it shares nothing with the machine's
    node but the Erlang port mapper. Starting it takes a few seconds.
    """

    certs: Certificates | None = None
    port: int = 0
    node: str = ""
    folder: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="ari-proxy-rabbitmq-"))
    )
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        scheme = "amqps" if self.certs is not None else "amqp"
        return f"{scheme}://guest:guest@127.0.0.1:{self.port}/"

    def _ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ctl(self, *args: str) -> int:
        """Run `rabbitmqctl` on this node (e.g. `stop_app`); its exit code."""
        return self._ctl(*args).returncode

    def _config(self, management: int) -> str:
        if self.certs is None:
            listeners = f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
        else:
            listeners = (
                "listeners.tcp = none\n"
                f"listeners.ssl.default = 127.0.0.1:{self.port}\n"
                f"ssl_options.cacertfile = {self.certs.ca}\n"
                f"ssl_options.certfile = {self.certs.server_cert}\n"
                f"ssl_options.keyfile = {self.certs.server_key}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        return listeners + f"loopback_users = none\nmanagement.tcp.port = {management}\n"

    def start(self) -> Self:
        if shutil.which("rabbitmq-server", path="/usr/sbin:/usr/bin") is None:
            raise SandboxError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.port, dist, management = _free_ports(3)
        self.node = f"ari-proxy-{self.port}@localhost"
        (self.folder / "rabbitmq.conf").write_text(self._config(management))
        shutil.chown(self.folder, "rabbitmq", "rabbitmq")
        owned = [self.folder / "rabbitmq.conf"]
        if self.certs is not None:
            owned.append(Path(self.certs.server_key))
        for path in owned:
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self._env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "plugins"),
        }
        self.boot()
        return self

    def boot(self) -> None:
        """Start the node's broker (again, after `kill()`) and wait until it takes clients."""
        subprocess.run(["rabbitmq-server", "-detached"], env=self._env, check=False, timeout=60)
        waited = self._ctl("wait", str(self.folder / "pid"), "--timeout", "90", timeout=120)
        if waited.returncode != 0:
            self.close()
            raise SandboxError(f"the RabbitMQ node did not start: {waited.stderr.strip()}")
        _wait_port("127.0.0.1", self.port, 30, "rabbitmq-server (private node)")

    @property
    def pid(self) -> int:
        """The broker's (Erlang VM's) process ID."""
        return int((self.folder / "pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL the broker process (a crash: no connection is closed cleanly)."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling: a killed process announces nothing to a non-parent
        # `rabbitmqctl wait` would otherwise wait for the dead process named in it.
        (self.folder / "pid").unlink(missing_ok=True)

    def close(self) -> None:
        if self.node:
            self._ctl("stop", str(self.folder / "pid"), timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class TlsRabbitMQ(RabbitMQNode):
    """A `RabbitMQNode` whose only listener is AMQPS with `certs`' server certificate."""

    def start(self) -> Self:
        if self.certs is None:
            raise ValueError("TlsRabbitMQ needs certificates")
        return super().start()
