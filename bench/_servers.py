"""Our server as its own process, started and stopped the way `GoServer` starts the Go one, so
that a benchmark treats both alike."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ari_proxy.testing import GoReference, Instance, proxy_env, wait_serving
from ari_proxy.testing.chaos import asterisk_back, rss

__all__ = ["DEFAULT_GOREF", "OurServer", "Served", "asterisk_back", "find_goref", "rabbitmqctl"]

DEFAULT_GOREF = Path(__file__).resolve().parents[2] / "shared" / "goref" / "bin"
"""Where the Go binaries are when `ARI_PROXY_GOREF` does not say: beside the checkout."""


def find_goref() -> GoReference | None:
    """The Go reference binaries, or None where there are none (the Go rows are then left out,
    with a line saying so)."""
    return GoReference.find(DEFAULT_GOREF)


class Served(Protocol):
    """A server process, Go's or ours, as `GoServer` and `OurServer` both are."""

    process: subprocess.Popen[bytes] | None

    async def ready(self, timeout: float = ...) -> None: ...

    def stop(self) -> None: ...


async def rabbitmqctl(*args: str) -> None:
    """Run `rabbitmqctl` on the machine's broker (quietly)."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await process.wait()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent ends (Linux `PR_SET_PDEATHSIG`; the
    parent is the thread that started it, so `start()` runs on the event loop's thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@dataclass
class OurServer:
    """One `python -m ari_proxy.server` process serving `application` for one Asterisk."""

    asterisk: Instance
    bus_url: str
    application: str
    log: Path | None = None
    """Where its log lines go (JSON, one per line); nowhere by default."""
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> OurServer:
        with open(self.log or os.devnull, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ari_proxy.server"],
                env=proxy_env(self.asterisk, self.bus_url, self.application),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Ends with the bench, even when the bench is killed: a server left behind
                # on the shared RabbitMQ answers other runs' node-less requests.
                preexec_fn=_die_with_parent,
            )
        return self

    def rss(self) -> int:
        """The process's resident memory, in bytes."""
        assert self.process is not None
        return rss(self.process.pid)

    async def ready(self, timeout: float = 15.0) -> None:
        await wait_serving(
            self.bus_url,
            self.asterisk.entity_id,
            self.application,
            alive=self._check_running,
            timeout=timeout,
        )

    def _check_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("our ari-proxy process is not running")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
