"""docs/cookbook/*.md: each recipe's code, gathered from the page's blocks, runs against real
Asterisk 22 and NATS through our proxy server (the testing recipe: against its own fakes, in a
pytest run of its own)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from docblocks import DOCS, files_of, load, write

import ari_proxy
from ari_proxy.ari.models import StasisStart
from ari_proxy.testing import Instance, TcpProxy, running_proxy, wait_until

RIFF_HEADER = 44  # bytes of a WAV header: a recording of silence-free audio is well beyond it


def recipe(page: str, tmp_path: Path) -> ModuleType:
    (name,) = files_of(f"cookbook/{page}")
    return load(f"cookbook/{page}", name, tmp_path)


@contextlib.asynccontextmanager
async def stack(asterisk: Instance, nats_url: str, *apps: str) -> AsyncIterator[ari_proxy.Client]:
    """Our proxy for `apps` beside `asterisk`, and a client of the first application."""
    async with (
        running_proxy(asterisk, nats_url, *apps),
        ari_proxy.connect(nats_url, application=apps[0], timeout=5.0) as client,
    ):
        yield client


async def answered(client: ari_proxy.Client, extension: str) -> ari_proxy.ChannelHandle:
    """A Local call into the application, returned once it is in it (answered, in Stasis)."""
    staged = await client.channels.stage_originate(f"Local/{extension}@default")
    async with staged.subscribe("StasisStart") as entered:
        channel = await staged.execute()
        await entered.next(timeout=20)
    return channel


def test_every_recipe_is_listed_and_has_code() -> None:
    pages = sorted(p.name for p in (DOCS / "cookbook").glob("*.md") if p.name != "index.md")
    index = (DOCS / "cookbook/index.md").read_text()
    assert pages and all(f"]({page})" in index for page in pages)
    assert all(files_of(f"cookbook/{page}") for page in pages)


async def inbound(client: ari_proxy.Client, phone: ari_proxy.Client) -> ari_proxy.ChannelHandle:
    """An unanswered call entering `client`'s application (through the sandbox's stasis-<app>
    extension, as a SIP call would), placed by the `phone` application's Local channel."""
    async with client.subscribe("StasisStart") as entered:
        await phone.channels.originate(f"Local/stasis-{client.application}@default")
        event = await entered.next(timeout=20)
    assert isinstance(event, StasisStart) and event.channel.state == "Ring"
    return client.channels.handle(event.channel.id, node=event.asterisk_id)


async def test_outbound_call_with_early_media_bridges_when_answered(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    outbound = recipe("outbound-early-media.md", tmp_path)
    async with (
        stack(asterisk, nats_url, app_name, f"{app_name}-phone") as client,
        ari_proxy.connect(nats_url, application=f"{app_name}-phone", timeout=5.0) as phone,
    ):
        caller = await inbound(client, phone)
        async with client.subscribe("PlaybackStarted") as early:
            bridge = await outbound.connect_caller(client, caller, "Local/wait@default", ring=10)
            started = await early.next(timeout=5)
        assert started.playback.target_uri == f"channel:{caller.id}"  # type: ignore[attr-defined]
        assert bridge is not None
        data = await bridge.data()
        assert caller.id in data.channels and len(data.channels) == 2
        assert (await caller.data()).state == "Up"
        await caller.hangup()
        await bridge.destroy()


async def test_outbound_call_unanswered_hangs_up_the_caller_unanswered(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    outbound = recipe("outbound-early-media.md", tmp_path)
    async with (
        stack(asterisk, nats_url, app_name, f"{app_name}-phone") as client,
        ari_proxy.connect(nats_url, application=f"{app_name}-phone", timeout=5.0) as phone,
    ):
        caller = await inbound(client, phone)
        async with (
            client.subscribe("PlaybackStarted") as early,
            caller.subscribe("ChannelStateChange", "StasisEnd") as seen,
        ):
            answered = await outbound.connect_caller(client, caller, "Local/ring@default", ring=1)
            assert answered is None
            started = await early.next(timeout=5)
            assert started.playback.target_uri == f"channel:{caller.id}"  # type: ignore[attr-defined]
            kinds = []
            async with asyncio.timeout(20):
                async for event in seen:
                    kinds.append(ari_proxy.event_type(event))
                    if kinds[-1] == "StasisEnd":  # hung up: it leaves the application
                        break
        assert "ChannelStateChange" not in kinds  # never answered


async def test_conference_gathers_callers_and_ends_with_the_last(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    conference = recipe("conference.md", tmp_path)
    async with stack(asterisk, nats_url, app_name) as client, client.listen() as calls:
        callers = [await client.channels.originate("Local/wait@default") for _ in range(3)]
        attending = [
            asyncio.create_task(conference.attend(await calls.next(timeout=20), "room"))
            for _ in callers
        ]
        bridge = client.bridges.handle("conf-room", node=asterisk.entity_id)
        async with bridge.subscribe("ChannelEnteredBridge", "BridgeDestroyed") as events:
            joined: set[str] = set()
            with contextlib.suppress(ari_proxy.NotFoundError):  # not made yet
                joined = set((await bridge.data()).channels)
            while len(joined) < 3:
                event = await events.next(timeout=20)
                joined.add(event.channel.id)  # type: ignore[attr-defined]
            assert joined == {c.id for c in callers}
            for caller in callers:
                await caller.hangup()
            await asyncio.wait_for(asyncio.gather(*attending), 20)
            while ari_proxy.event_type(await events.next(timeout=20)) != "BridgeDestroyed":
                pass
        with pytest.raises(ari_proxy.NotFoundError):
            await bridge.data()


async def test_recording_downloads_over_the_bus(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    recording = recipe("recording.md", tmp_path)
    async with stack(asterisk, nats_url, app_name) as client:
        caller = await answered(client, "playback")  # says hello-world
        stored = await recording.record(caller, 2)
        path = await recording.download(stored, tmp_path)
        await caller.hangup()
        audio = path.read_bytes()
        assert audio[:4] == b"RIFF" and len(audio) > RIFF_HEADER + 8000  # > 0.5 s at 8 kHz
        with pytest.raises(ari_proxy.NotFoundError):
            await stored.data()  # deleted from Asterisk


@pytest.mark.parametrize("proxies", ["one each", "one for both"])
async def test_transfer_moves_the_call_with_its_arguments(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str, proxies: str
) -> None:
    transfer = recipe("transfer.md", tmp_path)
    sales = f"{app_name}-sales"
    serving = [(app_name,), (sales,)] if proxies == "one each" else [(app_name, sales)]
    async with contextlib.AsyncExitStack() as stack_:
        for apps in serving:
            await stack_.enter_async_context(
                running_proxy(asterisk, nats_url, *apps, isolate_applications=False)
            )
        await _transfer(transfer, app_name, sales, nats_url)


async def _transfer(transfer: ModuleType, app_name: str, sales: str, nats_url: str) -> None:
    async with (
        ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client,
        ari_proxy.connect(nats_url, application=sales, timeout=5.0) as sales_client,
        client.listen() as calls,
        sales_client.listen() as sales_calls,
    ):
        caller = await answered(client, "wait")
        call = await calls.next(timeout=20)
        async with call:
            await transfer.reception(call, sales)
        async with asyncio.timeout(10):
            origin = await transfer.department(sales_calls)
        assert origin == ["from-reception", app_name]
        await caller.hangup()


async def test_snoop_records_the_call_and_whispers(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    snoop = recipe("snoop.md", tmp_path)
    async with stack(asterisk, nats_url, app_name) as client:
        caller = await answered(client, "playback")
        stored = await snoop.listen_in(caller, 2)
        audio = await stored.read()
        assert audio[:4] == b"RIFF" and len(audio) > RIFF_HEADER + 8000
        await stored.delete()
        async with caller.subscribe("ChannelHangupRequest") as hangups:
            await snoop.whisper(caller, "sound:beep")
            with pytest.raises(TimeoutError):
                await hangups.next(timeout=0.5)  # the call went on through both snoops
        await caller.hangup()


class RtpSink(asyncio.DatagramProtocol):
    """Stands in for the speech service: counts the RTP packets it receives."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.enough = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)
        if len(self.packets) >= 25:  # half a second of 20 ms packets
            self.enough.set()


async def test_external_media_streams_the_call_as_rtp(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    speech = recipe("external-media.md", tmp_path)
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        async with stack(asterisk, nats_url, app_name) as client:
            caller = await answered(client, "playback")
            bridge = await speech.stream_to(client, caller, f"127.0.0.1:{port}")
            await asyncio.wait_for(sink.enough.wait(), 20)
            await caller.hangup()
            for member in (await bridge.data()).channels:
                with contextlib.suppress(ari_proxy.NotFoundError):
                    await client.channels.handle(member).hangup()
            await bridge.destroy()
    finally:
        transport.close()
    version, payload_type = sink.packets[0][0] >> 6, sink.packets[0][1] & 0x7F
    assert (version, payload_type) == (2, 0)  # RTP v2, PCMU
    assert {len(p) for p in sink.packets[:25]} == {12 + 160}  # header + 20 ms of µ-law


async def test_connection_gap_tells_a_call_ended_unseen(
    tmp_path: Path, asterisk: Instance, nats_url: str, app_name: str
) -> None:
    gap = recipe("connection-gap.md", tmp_path)
    async with TcpProxy("127.0.0.1", asterisk.spec.http_port) as link:
        base = f"http://127.0.0.1:{link.port}/ari"
        async with (
            running_proxy(
                asterisk, nats_url, app_name, ari_http_url=base, ari_websocket_url=""
            ) as server,
            ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client,
            ari_proxy.connect(
                asterisk.http_url,
                application=f"{app_name}-direct",
                username=asterisk.username,
                password=asterisk.password,
            ) as direct,
            client.listen() as calls,
        ):
            caller = await client.channels.originate("Local/wait@default")
            call = await calls.next(timeout=20)
            async with call:
                following = asyncio.create_task(gap.wait_for_hangup(call))
                await link.cut()
                await wait_until(lambda: not server.ari_connected, 20)  # no event says so
                await direct.channels.handle(caller.id).hangup()  # unseen by the proxy
                await link.restore()
                how = await asyncio.wait_for(following, 30)
            assert how.startswith("gap of "), how


def test_testing_recipe_passes_in_a_pytest_run_of_its_own(tmp_path: Path) -> None:
    written = write("cookbook/testing.md", tmp_path)
    assert set(written) == {"greeter.py", "test_greeter.py"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(tmp_path / "test_greeter.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
