"""Helpers for the server tests: a server run in-process, requests as raw NATS bytes.

The fixtures live in `server_fixtures`, loaded by each test module's `pytest_plugins` (no
conftest.py here: the protocol tests import theirs as the module `conftest`, and a second one
could shadow it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from ari_proxy.testing import proxy_env

VENV_BIN = Path(sys.executable).parent
ARI_PROXY = str(VENV_BIN / "ari-proxy")


def body(data: Any) -> bytes:
    """A request body: bytes as they are, anything else as compact JSON (Go's separators)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data, separators=(",", ":")).encode()


async def request(nc: NatsClient, subject: str, data: Any, timeout: float = 5.0) -> Any:
    """Send a unicast request (new-style inbox, as nats.go) and return the decoded reply."""
    reply = await nc.request(subject, body(data), timeout=timeout)
    return json.loads(reply.data)


async def gather(
    nc: NatsClient, subject: str, data: Any, *, expected: int, timeout: float = 2.0
) -> list[Any]:
    """Broadcast like the Go client: reply subject `<rid>-rp`, collect `expected` replies."""
    from ari_proxy.protocol import new_id

    inbox = new_id("rp")
    replies: list[Any] = []
    done = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        replies.append(json.loads(msg.data))
        if len(replies) >= expected:
            done.set()

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(subject, body(data), reply=inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
    return replies


class Collector:
    """Every message on a subject (wildcards allowed), in arrival order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        self.messages.append((msg.subject, msg.data))
        self._changed.set()

    def json(self, subject_prefix: str = "") -> list[dict[str, Any]]:
        return [json.loads(d) for s, d in self.messages if s.startswith(subject_prefix)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds (checked after every message)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def collect(nc: NatsClient, *subjects: str) -> AsyncIterator[Collector]:
    """Collect the messages of `subjects` while the block runs."""
    collector = Collector()
    subs = [await nc.subscribe(s, cb=collector.on_message) for s in subjects]
    await nc.flush()
    try:
        yield collector
    finally:
        for sub in subs:
            await sub.unsubscribe()


def originate(
    app: str, channel_id: str, *, endpoint: str = "Local/wait@default", **extra: Any
) -> dict[str, Any]:
    """A `channel_originate` payload into `app`, as the Go client builds it."""
    request: dict[str, Any] = {"endpoint": endpoint, "app": app, "channelId": channel_id}
    request.update(extra)
    return {"originate_request": request}


def unicast(cls: str, app: str, node: str, prefix: str = "ari.") -> str:
    """The subject of a request for `app` on `node`."""
    return f"{prefix}{cls}.{app}.{node}"


__all__: Sequence[str] = [
    "ARI_PROXY",
    "Collector",
    "body",
    "collect",
    "gather",
    "originate",
    "proxy_env",
    "request",
    "unicast",
]
