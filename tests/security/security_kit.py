"""Helpers of the security tests (their fixtures are in `security_fixtures`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient

from ari_proxy.testing import free_port, nats_server_binary, proxy_env, tcp_open

__all__ = ["ARI_PROXY", "AuthNats", "body", "proxy_env", "request", "wait_for"]

ARI_PROXY = str(Path(sys.executable).parent / "ari-proxy")


def body(data: Any) -> bytes:
    """A request body: bytes as they are, anything else as compact JSON."""
    if isinstance(data, bytes):
        return data
    return json.dumps(data, separators=(",", ":")).encode()


async def request(nc: NatsClient, subject: str, data: Any, timeout: float = 5.0) -> Any:
    """A unicast request as a Go client sends it; the decoded reply."""
    reply = await nc.request(subject, body(data), timeout=timeout)
    return json.loads(reply.data)


class AuthNats:
    """A nats-server of its own on a free port that takes one user, `proxy`/`right`."""

    USER = "proxy"
    PASSWORD = "right"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ari-proxy-auth-"))
        self.config = self.dir / "nats.conf"
        self.write(self.PASSWORD)
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, password: str) -> None:
        self.config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f'authorization {{ users = [ {{ user: "{self.USER}", password: "{password}" }} ] }}\n'
        )

    def url(self, password: str | None = None) -> str:
        secret = self.PASSWORD if password is None else password
        return f"nats://{self.USER}:{secret}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if tcp_open("127.0.0.1", self.port):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)
        raise RuntimeError("nats-server did not open its port")

    def reload(self, password: str) -> None:
        """Change the user's password and have the server reload its configuration (SIGHUP):
        connections with the old one are closed."""
        assert self.proc is not None
        self.write(password)
        self.proc.send_signal(1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll `predicate` every 20 ms until it holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
