"""Fixtures for the bus tests.

What every transport promises is tested once, in `bus_contract.py`, which each backend's module
runs by subclassing `TransportContract`. `topic` is a subject prefix no other test uses, `until`
waits for a condition, and `auth_nats` starts a NATS server that wants a password or a token.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from ari_proxy.testing import free_port, nats_server_binary, tcp_open

Until = Callable[..., Awaitable[None]]


@pytest.fixture
def topic() -> str:
    """A subject prefix (no trailing dot) that no other test uses."""
    return "t" + secrets.token_hex(5)


@pytest.fixture
def until() -> Until:
    """`await until(predicate, timeout=5.0)`: poll every few milliseconds until it is true."""

    async def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            # Polling on purpose: the conditions are plain expressions over test state.
            while not predicate():
                await asyncio.sleep(0.005)

    return wait


@dataclass
class AuthNats:
    """A NATS server on a free loopback port that requires credentials."""

    port: int
    user: str = ""
    password: str = ""
    token: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _serve_nats(args: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not tcp_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the NATS server with authentication did not start")
        time.sleep(0.02)
    return proc


@pytest.fixture(params=["password", "token"])
def auth_nats(request: pytest.FixtureRequest) -> Iterator[AuthNats]:
    """A NATS server that wants user and password, or a token (a secret of this test)."""
    port = free_port()
    if request.param == "password":
        server = AuthNats(port, user="ari", password="pw-" + secrets.token_hex(8))
        args = ["--user", server.user, "--pass", server.password]
    else:
        server = AuthNats(port, token="tok-" + secrets.token_hex(8))
        args = ["--auth", server.token]
    proc = _serve_nats(args, port)
    try:
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
