"""The Go reference, CyCoreSystems/ari-proxy v5, run as real processes for interop tests.

Two binaries in one folder: `ari-proxy-go` (the Go server, unmodified) and `ari-goclient` (a
command-line program around the Go client library that prints one JSON line per result). The
folder comes from `ARI_PROXY_GOREF`, else from a default the caller passes (the pytest plugin
passes `../shared/goref/bin` beside the checkout). Where neither holds both binaries, `find()`
returns None and the interop tests are deselected.

Two habits of the Go code that a test must live with (both are worked around here):

- the Go client over RabbitMQ ignores the URL's host and dials `rabbitmq:5672`, so
  `GoReference.client()` runs it in a private mount namespace where `/etc/hosts` maps `rabbitmq`
  to the URL's host (nothing changes for the rest of the machine);
- the Go server says nothing when it is ready, so `GoServer.ready()` waits until it announces
  itself and answers a request on its node's subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._asterisk import Instance

__all__ = ["GOREF_ENV", "GoClientError", "GoReference", "GoServer", "wait_serving"]

GOREF_ENV = "ARI_PROXY_GOREF"
"""Environment variable naming the folder that holds the Go binaries."""

SERVER_BINARY = "ari-proxy-go"
CLIENT_BINARY = "ari-goclient"


class GoClientError(RuntimeError):
    """`ari-goclient` failed: it printed `{"error": ...}` or exited non-zero."""


@dataclass(frozen=True)
class GoReference:
    """The folder holding the Go server and the Go client program."""

    bin: Path

    @property
    def server_binary(self) -> Path:
        return self.bin / SERVER_BINARY

    @property
    def client_binary(self) -> Path:
        return self.bin / CLIENT_BINARY

    @classmethod
    def find(cls, default: Path | None = None) -> GoReference | None:
        """The reference from `ARI_PROXY_GOREF`, else `default`; None unless both binaries
        are there and executable."""
        configured = os.environ.get(GOREF_ENV)
        folder = Path(configured) if configured else default
        if folder is None:
            return None
        ref = cls(folder.resolve())
        binaries = (ref.server_binary, ref.client_binary)
        if all(b.is_file() and os.access(b, os.X_OK) for b in binaries):
            return ref
        return None

    def version(self) -> str:
        """What the Go server prints for `-V` (`v5.3.1`)."""
        done = subprocess.run(
            [str(self.server_binary), "-V"], capture_output=True, text=True, timeout=10
        )
        return (done.stdout or done.stderr).strip()

    def server(
        self,
        asterisk: Instance,
        bus_url: str,
        application: str,
        *,
        env: Mapping[str, str] | None = None,
    ) -> GoServer:
        """A Go server for `application` beside `asterisk` (not started yet)."""
        return GoServer(self, asterisk, bus_url, application, dict(env or {}))

    async def client(
        self,
        op: str,
        *args: str,
        bus_url: str,
        application: str,
        timeout: float = 30.0,
        check: bool = True,
    ) -> list[dict[str, Any]]:
        """Run `ari-goclient -op <op> <args>` and return its JSON lines.

        Runs as a subprocess of the event loop, so a server in this process keeps serving it.

        Raises:
            GoClientError: the program exited non-zero or printed an error (with `check`).
            TimeoutError: it did not end within `timeout` seconds (it is killed).
        """
        argv = [
            str(self.client_binary),
            "-op",
            op,
            "-uri",
            bus_url,
            "-app",
            application,
            *args,
        ]
        hosts: Path | None = None
        if urlsplit(bus_url).scheme.startswith("amqp"):
            hosts, argv = _with_rabbitmq_host(bus_url, argv)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "MESSAGEBUS_URL": bus_url, "ARI_APPLICATION": application},
            )
            try:
                async with asyncio.timeout(timeout):
                    out, err = await process.communicate()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise TimeoutError(
                    f"ari-goclient -op {op} did not end within {timeout:g}s"
                ) from None
        finally:
            if hosts is not None:
                hosts.unlink(missing_ok=True)
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        if check:
            failed = [line["error"] for line in lines if "error" in line]
            if process.returncode != 0 or failed:
                detail = failed[0] if failed else err.decode().strip()[-500:]
                raise GoClientError(f"ari-goclient -op {op} failed: {detail}")
        return lines


def _with_rabbitmq_host(bus_url: str, argv: list[str]) -> tuple[Path, list[str]]:
    """A hosts file mapping `rabbitmq` to the broker's address, and argv run under it."""
    host = urlsplit(bus_url).hostname or "127.0.0.1"
    address = socket.gethostbyname(host)
    fd, name = tempfile.mkstemp(prefix="ari-goref-hosts-")
    with os.fdopen(fd, "w") as hosts:
        hosts.write(f"127.0.0.1 localhost\n{address} rabbitmq\n")
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return Path(name), [unshare, "--mount", "sh", "-c", script, name, *argv]


async def wait_serving(
    bus_url: str,
    node: str,
    application: str,
    *,
    alive: Callable[[], None] = lambda: None,
    timeout: float = 15.0,
) -> None:
    """Wait until a server (Go's or ours) announces `application` on `node` and answers a request
    on that node's subject. `alive` is called between tries and raises if the server died.

    Raises:
        TimeoutError: not serving within `timeout` seconds.
    """
    from ..bus import connect as connect_bus
    from ..protocol import Subjects, decode_announcement

    subjects = Subjects()
    bus = connect_bus(bus_url, name=f"goref-ready-{secrets.token_hex(3)}")
    await bus.connect()
    announced = asyncio.Event()

    def on_announce(message: Any) -> None:
        with contextlib.suppress(Exception):
            seen = decode_announcement(message.data)
            if (seen.node, seen.application) == (node, application):
                announced.set()

    try:
        await bus.subscribe(subjects.announce, on_announce)
        request = json.dumps({"kind": "AsteriskInfo", "key": {"node": node, "app": application}})
        async with asyncio.timeout(timeout):
            while True:
                alive()
                await bus.ping(subjects.ping, b'{"kind":"","key":null}')
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await announced.wait()
                if announced.is_set():
                    subject = subjects.request("data", application, node)
                    with contextlib.suppress(Exception):
                        await bus.request(subject, request.encode(), timeout=0.5)
                        return
    finally:
        await bus.close()


@dataclass
class GoServer:
    """One `ari-proxy-go` process serving `application` for one Asterisk."""

    ref: GoReference
    asterisk: Instance
    bus_url: str
    application: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def node(self) -> str:
        """The entity ID the server announces (its Asterisk's)."""
        return self.asterisk.entity_id

    def start(self) -> GoServer:
        """Start the process (see `ready()` to wait until it serves)."""
        fd, name = tempfile.mkstemp(prefix=f"ari-proxy-go-{self.application}-", suffix=".log")
        self.log = Path(name)
        env = {
            **os.environ,
            "ARI_APPLICATION": self.application,
            "ARI_USERNAME": self.asterisk.username,
            "ARI_PASSWORD": self.asterisk.password,
            "ARI_HTTP_URL": self.asterisk.http_url,
            "ARI_WEBSOCKET_URL": self.asterisk.ws_url,
            "MESSAGEBUS_URL": self.bus_url,
            **self.env,
        }
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.ref.server_binary)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    async def ready(self, timeout: float = 15.0) -> None:
        """Wait until the server announces itself and answers on its node's subject.

        Raises:
            RuntimeError: the process ended (its log is in the message).
            TimeoutError: not ready within `timeout` seconds.
        """
        await wait_serving(
            self.bus_url, self.node, self.application, alive=self._check_running, timeout=timeout
        )

    def _check_running(self) -> None:
        if self.process is None:
            raise RuntimeError("the Go server was not started")
        if self.process.poll() is not None:
            raise RuntimeError(
                f"ari-proxy-go exited with {self.process.returncode}: {self.output()[-2000:]}"
            )

    def output(self) -> str:
        """What the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log is not None else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process (it does not trap SIGTERM: either ends it at once)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self) -> None:
        """End the process and remove its log."""
        if self.process is not None:
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait(timeout=5)
        if self.log is not None:
            self.log.unlink(missing_ok=True)

    async def __aenter__(self) -> GoServer:
        self.start()
        try:
            await self.ready()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
