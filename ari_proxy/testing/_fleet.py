"""Application instances as OS processes, and callers on several Asterisk nodes.

`Fleet` runs `python -m ari_proxy.testing.instance` processes and collects the JSON lines they
say; `Callers` places Local calls through each node's ARI and SIP calls with sipp. The handover
tests and the chaos runs (`ari_proxy.testing.chaos`) use them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._exceptions import NotFoundError
from ..ari import AriClient
from ..ari import connect as ari_connect
from ._asterisk import Instance
from ._sipp import SippResult, sipp_calls

__all__ = ["Callers", "Fleet", "Line"]

Line = dict[str, Any]


class Fleet:
    """Application instances (`python -m ari_proxy.testing.instance`), each an OS process, and
    every line they said."""

    def __init__(self, bus_url: str, app: str, logs: Path, prefix: str = "ari.") -> None:
        self.bus_url = bus_url
        self.app = app
        self.prefix = prefix
        self.logs = logs
        self.lines: list[Line] = []
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.instance_ids: dict[str, str] = {}
        self._changed = asyncio.Condition()
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
        for process in self.processes.values():
            await process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    async def start(self, name: str, *options: str) -> str:
        """Start instance `name`; return its instance ID once it takes calls."""
        stderr = (self.logs / f"{name}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARI_", "MESSAGEBUS_"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ari_proxy.testing.instance",
            "--bus",
            self.bus_url,
            "--app",
            self.app,
            "--name",
            name,
            "--prefix",
            self.prefix,
            *options,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        stderr.close()
        self.processes[name] = process
        self._readers.append(asyncio.create_task(self._read(name, process)))
        started = await self.wait_for(lambda: self.said("started", name=name), 30)
        self.instance_ids[name] = started[0]["instance"]
        return self.instance_ids[name]

    async def _read(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                said = json.loads(line)
            except ValueError:
                continue
            async with self._changed:
                self.lines.append(said)
                self._changed.notify_all()
        async with self._changed:
            self.lines.append({"event": "exited", "name": name})
            self._changed.notify_all()

    def said(self, event: str, **match: Any) -> list[Line]:
        """The lines of `event` whose fields match."""
        return [
            line
            for line in self.lines
            if line.get("event") == event and all(line.get(k) == v for k, v in match.items())
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Until `predicate()` is truthy (checked at each line said); return its value.

        Raises:
            TimeoutError: not within `timeout`, with a count of what was said.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        except TimeoutError:
            said = collections.Counter((line["event"], line.get("name")) for line in self.lines)
            (self.logs / "said.json").write_text(json.dumps(self.lines))
            raise TimeoutError(f"instances said: {dict(said)}") from None

    def owners(self) -> dict[str, str]:
        """Channel -> the instance that took or was handed it last."""
        owner: dict[str, str] = {}
        for line in self.lines:
            if line.get("event") in ("taken", "handover"):
                owner[line["channel"]] = line["name"]
        return owner

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.processes[name].send_signal(sig)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    async def stop(self, name: str) -> int:
        """SIGTERM (a drain), and its exit code."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            return await process.wait()

    async def tell(self, name: str, command: str) -> None:
        stdin = self.processes[name].stdin
        assert stdin is not None
        stdin.write(command.encode() + b"\n")
        await stdin.drain()


class Callers:
    """Calls into the application on several nodes: Local channels originated through each
    node's ARI (application `<app>-source`) and SIP calls from sipp, which end when the
    application hangs them up."""

    def __init__(self, app: str, nodes: list[Instance]) -> None:
        self.app = app
        self.nodes = nodes
        self.clients: list[AriClient] = []
        self.local: list[str] = []
        self.sip: list[asyncio.Task[SippResult]] = []
        self.sip_count = 0

    async def __aenter__(self) -> Callers:
        for node in self.nodes:
            self.clients.append(
                await ari_connect(node.http_url, node.username, node.password, f"{self.app}-source")
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.hang_up_all()
        for task in self.sip:
            task.cancel()
        await asyncio.gather(*self.sip, return_exceptions=True)
        for client in self.clients:
            await client.close()

    async def place(self, *, local: int, sip: int) -> None:
        """`local` Local calls and `sip` SIP calls on each node."""
        for node, client in zip(self.nodes, self.clients, strict=True):
            for _ in range(local):
                handle = await client.channels.originate("Local/wait@default", app=self.app)
                self.local.append(f"{node.entity_id}/{handle.id}")
            if sip:
                self.sip.append(
                    asyncio.create_task(
                        sipp_calls(node, f"stasis-{self.app}", calls=sip, rate=20, timeout=180)
                    )
                )
                self.sip_count += sip

    async def existing(self) -> set[str]:
        """Every channel on the nodes, as `<node>/<channel>`."""
        found: set[str] = set()
        for client in self.clients:
            found |= {f"{h.key.node}/{h.id}" for h in await client.channels.list()}
        return found

    async def hang_up_all(self) -> None:
        for client in self.clients:
            for handle in await client.channels.list():
                with contextlib.suppress(NotFoundError):
                    await handle.hangup()

    async def sip_results(self) -> list[SippResult]:
        async with asyncio.timeout(60):
            return list(await asyncio.gather(*self.sip))
