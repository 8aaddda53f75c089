"""docs/tutorial.md: its `ivr.py`, gathered from the page's blocks, runs against real Asterisk 22
sandboxes and NATS through our proxy server, as the page says it does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from docblocks import files_of, load

import ari_proxy
from ari_proxy.ari.models import ChannelStateChange, StasisStart
from ari_proxy.testing import Instance, running_proxy

PAGE = "tutorial.md"


@pytest.fixture
def ivr(tmp_path: Path) -> ModuleType:
    module = load(PAGE, "ivr.py", tmp_path)
    module.DIGIT_TIMEOUT = 2.0  # the test's callers press at once, or never
    module.MESSAGE_SECONDS = 2.0
    return module


class Outcomes(dict[str, str]):
    """The IVR's `handled` map, which tells waiters when an outcome is noted."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Condition()

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, *channels: str, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: all(c in self for c in channels))


@contextlib.asynccontextmanager
async def instance(
    ivr: ModuleType, nats_url: str, app: str
) -> AsyncIterator[tuple[ari_proxy.Client, Outcomes]]:
    """One running copy of the IVR (its own bus connection): its client and its outcomes."""
    handled = Outcomes()
    async with ari_proxy.connect(nats_url, application=app, timeout=5.0) as client:
        serving = asyncio.create_task(ivr.serve(client, handled))
        try:
            yield client, handled
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def call_and_wait_end(
    client: ari_proxy.Client, extension: str, node: str | None = None
) -> str:
    """A Local call into the application; returns its channel ID once the IVR hung it up."""
    staged = await client.channels.stage_originate(f"Local/{extension}@default", node=node)
    async with staged.subscribe("ChannelDestroyed") as ended:
        await staged.execute()
        await ended.next(timeout=30)
    return staged.id


def test_every_python_block_belongs_to_ivr_py() -> None:
    assert list(files_of(PAGE)) == ["ivr.py"]


async def test_pressing_1_records_a_message_that_downloads_over_the_bus(
    ivr: ModuleType, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    async with running_proxy(asterisk, nats_url, app_name):
        async with instance(ivr, nats_url, app_name) as (client, handled):
            caller = await call_and_wait_end(client, "dtmf")  # presses 1234#
            await handled.wait_for(caller)
            name = f"ivr-{caller}"
            assert handled[caller] == f"recorded {name}"
            stored = client.recordings.stored(name)
            audio = await stored.read()
            assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
            await stored.delete()


async def test_no_key_is_goodbye_and_hangup(
    ivr: ModuleType, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    async with running_proxy(asterisk, nats_url, app_name):
        async with instance(ivr, nats_url, app_name) as (client, handled):
            caller = await call_and_wait_end(client, "wait")
            await handled.wait_for(caller)
            assert handled[caller] == "no choice (no key)"


async def test_two_callers_pressing_2_talk_in_the_lobby(
    ivr: ModuleType, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    """Each caller is a Local channel whose far end enters a "phone" application of the test,
    which presses 2 once the IVR has answered."""
    phone_app = f"{app_name}-phone"
    async with running_proxy(asterisk, nats_url, app_name, phone_app):
        async with (
            instance(ivr, nats_url, app_name) as (client, handled),
            ari_proxy.connect(nats_url, application=phone_app, timeout=5.0) as phone,
            phone.subscribe("StasisStart") as phone_events,
        ):
            callers = []
            for _ in range(2):
                staged = await client.channels.stage_originate(f"Local/stasis-{phone_app}@default")
                async with staged.subscribe("ChannelStateChange") as states:
                    callers.append(await staged.execute())
                    entered = await phone_events.next(timeout=20)  # the far end, in the phone
                    assert isinstance(entered, StasisStart)
                    handset = phone.channels.handle(entered.channel.id)
                    await handset.answer()
                    async with asyncio.timeout(20):  # the IVR answered: it is listening
                        async for state in states:
                            up = isinstance(state, ChannelStateChange) and state.channel.state
                            if up == "Up":
                                break
                await handset.send_dtmf("2")
            await handled.wait_for(*(c.id for c in callers))
            lobby = client.bridges.handle(f"ivr-lobby-{asterisk.entity_id}")
            assert all(handled[c.id] == f"lobby {lobby.id}" for c in callers), handled
            assert set((await lobby.data()).channels) == {c.id for c in callers}
            for caller in callers:
                await caller.hangup()
            await lobby.destroy()


async def test_two_instances_on_two_nodes_handle_every_call_once(
    ivr: ModuleType, asterisk: Instance, asterisk2: Instance, nats_url: str, app_name: str
) -> None:
    async with (
        running_proxy(asterisk, nats_url, app_name),
        running_proxy(asterisk2, nats_url, app_name),
        instance(ivr, nats_url, app_name) as (client, first),
        instance(ivr, nats_url, app_name) as (_, second),
    ):
        nodes = [asterisk.entity_id, asterisk2.entity_id] * 3
        callers = await asyncio.gather(*(call_and_wait_end(client, "wait", n) for n in nodes))
        async with asyncio.timeout(20):
            for caller in callers:  # each is noted by the instance that took it
                _, waiting = await asyncio.wait(
                    [asyncio.create_task(o.wait_for(caller)) for o in (first, second)],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for other in waiting:  # the other instance will not note it: stop waiting
                    other.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
        assert set(first).isdisjoint(second)
        outcomes = first | second
        assert {c: outcomes.get(c) for c in callers} == dict.fromkeys(callers, "no choice (no key)")
        print(f"instance 1 took {len(first)} calls, instance 2 took {len(second)}")


async def test_the_shell_steps_run_a_proxy_and_place_a_call(
    ivr: ModuleType, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    """Steps 2 and 8 as the page types them: the `ari-proxy` command with the page's
    environment (this sandbox's port and password), then `ari-proxy call` into the IVR."""
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": os.environ["PATH"],
        "ARI_APPLICATION": app_name,
        "ARI_USERNAME": asterisk.username,
        "ARI_PASSWORD": asterisk.password,
        "ARI_HTTP_URL": asterisk.http_url,
        "MESSAGEBUS_URL": nats_url,
    }
    server = await asyncio.create_subprocess_exec(
        bin_dir / "ari-proxy",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with instance(ivr, nats_url, app_name) as (client, handled):
            joined = asyncio.Event()
            client.on_node_change(lambda change, node: joined.set())  # type: ignore[attr-defined]
            if not client.nodes():  # type: ignore[attr-defined]
                await asyncio.wait_for(joined.wait(), 30)  # the proxy announced itself
            call = await asyncio.create_subprocess_exec(
                bin_dir / "ari-proxy",
                "call",
                "Local/wait@default",
                "--app",
                app_name,
                "--timeout",
                "30",
                "--json",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(call.communicate(), 60)
            assert call.returncode == 0, err.decode()
            events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
            assert events[-1]["type"] == "ChannelDestroyed"
            channel = events[-1]["channel"]["id"]
            await handled.wait_for(channel)
            assert handled[channel] == "no choice (no key)"
    finally:
        server.terminate()
        assert await asyncio.wait_for(server.wait(), 30) == 0
