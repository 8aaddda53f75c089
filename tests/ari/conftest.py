"""Fixtures for the native ARI client tests against the real Asterisk 22 sandbox.

- `client`: an `AriClient` for this test's own application (`app_name`), so tests never see
  each other's events; on teardown it hangs up every channel still in that application.
- `janitor`: undo actions (destroy a bridge, delete a recording) run after the test even when
  it fails; errors from entities that are already gone are ignored.
- `stasis_channel`: originate `Local/<extension>@default` into the application and wait for its
  StasisStart (the `;1` half is in Stasis, the `;2` half runs the dialplan extension).
- `connect_client`: open another client (other applications, `subscribe_all`, ...), closed on
  teardown.
- `expect`: the next event of some types from a subscription, skipping the others.
- `until_gone`: wait until a read answers 404 (Asterisk removes a hung-up channel, a destroyed
  bridge or a finished recording a moment after the request that ended it returns).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import pytest

import ari_proxy.ari as ari
from ari_proxy._exceptions import AriError, NotFoundError
from ari_proxy.api import ChannelHandle, Subscription, event_type
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import Message
from ari_proxy.testing import Instance


class Janitor:
    """Cleanup actions, run last-added first after the test."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], Awaitable[object]]] = []

    def add(self, undo: Callable[[], Awaitable[object]]) -> None:
        self._undo.append(undo)

    async def run(self) -> None:
        while self._undo:
            undo = self._undo.pop()
            with contextlib.suppress(AriError):
                await undo()


async def hang_up_application(client: AriClient) -> None:
    """Hang up every channel in `client`'s applications (left over by a failed test)."""
    for channel in await client.channels.list():
        with contextlib.suppress(AriError):
            data = await channel.data()
            app = data.dialplan.app_data.split(",")[0] if data.dialplan else ""
            if data.dialplan and data.dialplan.app_name == "Stasis" and app == client.application:
                await channel.hangup()


@pytest.fixture
async def janitor() -> AsyncIterator[Janitor]:
    jan = Janitor()
    yield jan
    await jan.run()


@pytest.fixture
async def client(asterisk: Instance, app_name: str, janitor: Janitor) -> AsyncIterator[AriClient]:
    async with ari.connect(
        asterisk.http_url, asterisk.username, asterisk.password, app_name
    ) as connected:
        yield connected
        await janitor.run()
        await hang_up_application(connected)


class ConnectClient(Protocol):
    def __call__(
        self, applications: str | Sequence[str], **options: Any
    ) -> Awaitable[AriClient]: ...


@pytest.fixture
async def connect_client(asterisk: Instance) -> AsyncIterator[ConnectClient]:
    opened: list[AriClient] = []

    async def open_client(applications: str | Sequence[str], **options: Any) -> AriClient:
        new = await ari.connect(
            asterisk.http_url, asterisk.username, asterisk.password, applications, **options
        )
        opened.append(new)
        return new

    yield open_client
    for other in opened:
        if not other.closed:
            with contextlib.suppress(AriError):
                await hang_up_application(other)
            await other.close()


class StasisChannel(Protocol):
    def __call__(self, extension: str = "wait", **options: Any) -> Awaitable[ChannelHandle]: ...


@pytest.fixture
def stasis_channel(client: AriClient, janitor: Janitor) -> StasisChannel:
    async def originate(extension: str = "wait", **options: Any) -> ChannelHandle:
        staged = await client.channels.stage_originate(f"Local/{extension}@default", **options)
        async with staged.subscribe("StasisStart") as events:
            channel = await staged.execute()
            janitor.add(channel.hangup)
            await events.next(timeout=5)
        return channel

    return originate


Expect = Callable[..., Awaitable[Message]]


async def _expect(
    sub: Subscription,
    *types: str,
    timeout: float = 5.0,
    where: Callable[[Message], bool] | None = None,
) -> Message:
    """The next event of `types` (any type when none) matching `where`, skipping others.

    Raises:
        TimeoutError: none within `timeout` seconds in all.
    """
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.next()
            if (not types or event_type(event) in types) and (where is None or where(event)):
                return event


@pytest.fixture
def expect() -> Expect:
    return _expect


async def _until_gone(read: Callable[[], Awaitable[object]], timeout: float = 5.0) -> None:
    """Call `read` until it raises NotFoundError.

    Raises:
        TimeoutError: still there after `timeout` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            try:
                await read()
            except NotFoundError:
                return
            await asyncio.sleep(0.05)


@pytest.fixture
def until_gone() -> Callable[..., Awaitable[None]]:
    return _until_gone
