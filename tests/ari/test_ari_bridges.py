"""Bridges through the native ARI client, against the real Asterisk 22 sandbox."""

from __future__ import annotations

import asyncio

import pytest

from ari_proxy._exceptions import (
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    UnprocessableEntityError,
)
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import (
    BridgeVideoSourceChanged,
    ChannelEnteredBridge,
    ChannelLeftBridge,
    PlaybackFinished,
    PlaybackStarted,
)

pytestmark = pytest.mark.integration


async def test_bridge_lifecycle_and_membership(
    client: AriClient, stasis_channel, janitor, expect, until_gone
) -> None:
    async with asyncio.timeout(15):
        first = await stasis_channel("wait")
        second = await stasis_channel("echo")
        bridge = await client.bridges.create("mixing", name="lobby")
        janitor.add(bridge.destroy)
        data = await bridge.data()
        assert (data.id, data.name, data.bridge_type) == (bridge.id, "lobby", "mixing")
        assert (data.technology, data.bridge_class, data.channels) == (
            "simple_bridge",
            "stasis",
            [],
        )
        assert bridge in await client.bridges.list()
        assert await client.bridges.get(bridge.id) == bridge

        async with bridge.subscribe("ChannelEnteredBridge", "ChannelLeftBridge") as events:
            await bridge.add_channel(first)
            entered = await expect(events)
            assert isinstance(entered, ChannelEnteredBridge)
            assert (entered.channel.id, entered.bridge.channels) == (first.id, [first.id])
            await bridge.add_channel(second.id, role="partner", mute=True)
            entered = await expect(events, where=lambda e: e.channel.id == second.id)
            assert sorted(entered.bridge.channels) == sorted([first.id, second.id])
            assert sorted((await bridge.data()).channels) == sorted([first.id, second.id])

            await bridge.remove_channel(first)
            left = await expect(events, "ChannelLeftBridge")
            assert isinstance(left, ChannelLeftBridge)
            assert (left.channel.id, left.bridge.channels) == (first.id, [second.id])
            with pytest.raises(UnprocessableEntityError) as not_in:
                await bridge.remove_channel(first)
            assert not_in.value.message == "Channel not in this bridge"

            await bridge.destroy()  # the remaining member is put out of the bridge
            left = await expect(events, "ChannelLeftBridge")
            assert (left.channel.id, left.bridge.channels) == (second.id, [])
        await second.data()  # the channel outlives the bridge

        # For a moment Asterisk still has the bridge's snapshot and answers 409 "Bridge not in
        # Stasis application"; once the snapshot is gone, it is 404.
        await until_gone(bridge.data)
        with pytest.raises(NotFoundError) as gone:
            await bridge.destroy()
        # Asterisk 22 spells this reason phrase with a lower-case "f".
        assert (gone.value.status, gone.value.reason, gone.value.message) == (
            404,
            "Not found",
            "Bridge not found",
        )
        assert bridge not in await client.bridges.list()


async def test_bridge_membership_errors(client: AriClient, stasis_channel, janitor) -> None:
    async with asyncio.timeout(10):
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        for operation in (bridge.add_channel, bridge.remove_channel):
            with pytest.raises(BadRequestError) as missing:
                await operation("no-such-channel")
            assert missing.value.message == "Channel not found"
        with pytest.raises(NotFoundError) as no_bridge:
            await client.bridges.handle("no-such-bridge").add_channel(await stasis_channel())
        assert no_bridge.value.message == "Bridge not found"
        with pytest.raises(InternalServerError) as bad_type:
            await client.bridges.create("bogus")
        assert (bad_type.value.reason, bad_type.value.message) == (
            "Internal Error",
            "Unable to create bridge",
        )


async def test_staged_bridge_is_subscribed_before_it_exists(
    client: AriClient, stasis_channel, janitor, expect
) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        staged = await client.bridges.stage_create("holding", bridge_id=f"{client.application}-br")
        assert staged.id == f"{client.application}-br"
        with pytest.raises(NotFoundError):
            await staged.handle.data()
        async with staged.subscribe() as events:
            bridge = await staged.execute()
            janitor.add(bridge.destroy)
            assert bridge == staged.handle
            data = await bridge.data()
            assert (data.id, data.bridge_type, data.technology) == (
                staged.id,
                "holding",
                "holding_bridge",
            )
            await bridge.add_channel(channel)
            entered = await expect(events, "ChannelEnteredBridge")
            assert entered.bridge.id == staged.id
        with pytest.raises(RuntimeError):
            await staged.execute()


async def test_staged_bridge_playback(client: AriClient, stasis_channel, janitor, expect) -> None:
    async with asyncio.timeout(15):
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        await bridge.add_channel(await stasis_channel("echo"))
        staged = await bridge.stage_play("sound:beep")
        async with staged.subscribe("PlaybackStarted", "PlaybackFinished") as events:
            playback = await staged.execute()
            started = await expect(events)
            finished = await expect(events)
        assert isinstance(started, PlaybackStarted) and isinstance(finished, PlaybackFinished)
        assert started.playback.id == finished.playback.id == playback.id == staged.id
        assert finished.playback.target_uri == f"bridge:{bridge.id}"
        assert finished.playback.state == "done"
        with pytest.raises(NotFoundError):
            await client.bridges.handle("no-such-bridge").stage_play("sound:beep")


async def test_bridge_recording(client: AriClient, stasis_channel, janitor, expect) -> None:
    async with asyncio.timeout(15):
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        await bridge.add_channel(await stasis_channel())
        staged = await bridge.stage_record(format="wav", max_duration=10)
        async with staged.subscribe("RecordingStarted", "RecordingFinished") as events:
            live = await staged.execute()
            janitor.add(live.stored().delete)
            started = await expect(events)
            assert started.recording.target_uri == f"bridge:{bridge.id}"
            assert (await live.data()).state == "recording"
            # Something to record: hello-world played into the mix, from start to end.
            played = await bridge.stage_play("sound:hello-world")
            async with played.subscribe("PlaybackFinished") as playback_events:
                await played.execute()
                await expect(playback_events)
            stored = await live.stop()
            finished = await expect(events, "RecordingFinished")
        assert finished.recording.name == live.id and finished.recording.state == "done"
        assert (await stored.data()).format == "wav"
        wav = await stored.read()
        assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
        assert len(wav) > 16000  # hello-world lasts over a second: 8 kHz, 16-bit
        assert any(wav[44:])  # and it is not silence
        await stored.delete()
        with pytest.raises(NotFoundError):
            await client.bridges.handle("no-such-bridge").record()


async def test_bridge_music_on_hold(client: AriClient, stasis_channel, janitor) -> None:
    async with asyncio.timeout(10):
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        await bridge.add_channel(await stasis_channel())
        with pytest.raises(ConflictError) as idle:
            await bridge.stop_moh()
        assert idle.value.message == "Bridge isn't playing music"
        await bridge.start_moh("default")
        await bridge.stop_moh()  # accepted only because music was playing
        with pytest.raises(ConflictError):
            await bridge.stop_moh()
        with pytest.raises(NotFoundError):
            await client.bridges.handle("no-such-bridge").start_moh()


async def test_bridge_video_source(client: AriClient, stasis_channel, janitor, expect) -> None:
    """Asterisk 22 accepts a video source on an audio-only mixing bridge (no error)."""
    async with asyncio.timeout(10):
        member = await stasis_channel()
        outsider = await stasis_channel()
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        await bridge.add_channel(member)
        async with client.subscribe("BridgeVideoSourceChanged") as events:
            await bridge.set_video_source(member)
            changed = await expect(events)
            assert isinstance(changed, BridgeVideoSourceChanged)
            assert changed.bridge.video_source_id == member.id
            data = await bridge.data()
            assert (data.video_mode, data.video_source_id) == ("single", member.id)

            with pytest.raises(UnprocessableEntityError) as not_in:
                await bridge.set_video_source(outsider)
            assert not_in.value.message == "Channel not in this bridge"

            # Asterisk 22 publishes a cleared source lazily: the bridge snapshot (data and the
            # event) changes with the bridge's next change, here a channel joining.
            await bridge.clear_video_source()
            await bridge.add_channel(outsider)
            cleared = await expect(events)
            assert cleared.bridge.video_source_id is None
            data = await bridge.data()
            assert (data.video_mode, data.video_source_id) == ("talker", None)

        with pytest.raises(BadRequestError) as missing:
            await bridge.set_video_source("no-such-channel")
        assert missing.value.message == "Channel not found"


async def test_bridge_variables(client: AriClient, janitor) -> None:
    async with asyncio.timeout(10):
        bridge = await client.bridges.create(variables={"INITIAL": "set at creation"})
        janitor.add(bridge.destroy)
        assert await bridge.get_variable("INITIAL") == "set at creation"
        with pytest.raises(NotFoundError) as unset:
            await bridge.get_variable("NEVER_SET")
        # Unlike channels ("Variable Not Found"), the single-variable read says "Not Found".
        assert (unset.value.reason, unset.value.message) == (
            "Not Found",
            "Provided variable was not found",
        )
        await bridge.set_variable("ROOM", "blue")
        assert await bridge.get_variable("ROOM") == "blue"
        await bridge.set_variables({"X": "1", "Y": "two"})
        assert await bridge.get_variables(["X", "Y", "ROOM"]) == {
            "X": "1",
            "Y": "two",
            "ROOM": "blue",
        }
        with pytest.raises(NotFoundError) as bulk:
            await bridge.get_variables(["X", "NEVER_SET"])
        assert bulk.value.reason == "Variable Not Found"
        with pytest.raises(NotFoundError):
            await client.bridges.handle("no-such-bridge").set_variable("A", "1")
