"""Application-level scenarios that must behave the same through the native and the proxy client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import ari_proxy
from ari_proxy import event_type


async def gone(read: Callable[[], Awaitable[object]]) -> None:
    """Until reading the entity answers 404: Asterisk sends an entity's last event (a
    ChannelDestroyed, a PlaybackFinished) a moment before the entity leaves its registry."""
    for _ in range(50):  # bounded: a second at most
        try:
            await read()
        except ari_proxy.NotFoundError as exc:
            assert exc.status == 404
            return
        await asyncio.sleep(0.02)
    pytest.fail("the entity is still there a second after its last event")


async def in_stasis(
    client: ari_proxy.Client, endpoint: str = "Local/wait@default", **options: object
) -> ari_proxy.ChannelHandle:
    """Originate a call and return once it is in the application (stage, subscribe, execute)."""
    staged = await client.channels.stage_originate(endpoint, **options)  # type: ignore[arg-type]
    async with staged.subscribe("StasisStart") as started:
        channel = await staged.execute()
        await started.next(timeout=10)
    return channel


async def test_originate_answer_hangup(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(20):
        async with client.subscribe("StasisStart", "StasisEnd", "ChannelDestroyed") as events:
            channel = await client.channels.originate("Local/wait@default")
            start = await events.next(timeout=10)
            assert event_type(start) == "StasisStart"
            assert start.channel.id == channel.id  # type: ignore[attr-defined]
            assert channel.key.app == client.application
            assert channel.node == start.asterisk_id
            await channel.answer()
            data = await channel.data()
            assert data.state == "Up"
            assert data.name.startswith("Local/wait@default-")
            await channel.hangup()
            seen = [event_type(await events.next(timeout=10)) for _ in range(2)]
            assert seen == ["StasisEnd", "ChannelDestroyed"]
        await gone(channel.data)


async def test_play_and_wait_for_playback_finished(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(30):
        channel = await in_stasis(client)
        staged = await channel.stage_play("sound:hello-world")
        async with staged.subscribe("PlaybackStarted", "PlaybackFinished") as events:
            playback = await staged.execute()
            assert playback.id == staged.id
            started = await events.next(timeout=10)
            assert event_type(started) == "PlaybackStarted"
            assert started.playback.media_uri == "sound:hello-world"  # type: ignore[attr-defined]
            finished = await events.next(timeout=15)
            assert event_type(finished) == "PlaybackFinished"
            assert finished.playback.state == "done"  # type: ignore[attr-defined]
        await gone(playback.data)
        await channel.hangup()


async def test_record_then_keep_and_delete(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(30):
        channel = await in_stasis(client, "Local/echo@default")
        staged = await channel.stage_record(format="wav", if_exists="overwrite")
        async with staged.subscribe("RecordingStarted", "RecordingFinished") as events:
            recording = await staged.execute()
            assert event_type(await events.next(timeout=10)) == "RecordingStarted"
            live = await recording.data()
            assert live.state == "recording"
            assert live.format == "wav"
            await asyncio.sleep(0.5)  # pacing: record for a while
            stored = await recording.stop()
            assert event_type(await events.next(timeout=10)) == "RecordingFinished"
        data = await stored.data()
        assert (data.name, data.format) == (recording.id, "wav")
        names = {h.id for h in await client.recordings.list_stored()}
        assert recording.id in names
        await stored.delete()
        with pytest.raises(ari_proxy.NotFoundError):
            await stored.data()
        await channel.hangup()


async def test_bridge_two_channels(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(30):
        first = await in_stasis(client)
        second = await in_stasis(client, node=first.node)
        staged = await client.bridges.stage_create("mixing", name="conformance", node=first.node)
        async with staged.subscribe("ChannelEnteredBridge", "ChannelLeftBridge") as events:
            bridge = await staged.execute()
            await bridge.add_channel(first)
            await bridge.add_channel(second.id)
            entered = {(await events.next(timeout=10)).channel.id for _ in range(2)}  # type: ignore[attr-defined]
            assert entered == {first.id, second.id}
            data = await bridge.data()
            assert sorted(data.channels) == sorted([first.id, second.id])
            assert data.bridge_type == "mixing"
            await bridge.remove_channel(first)
            left = await events.next(timeout=10)
            assert event_type(left) == "ChannelLeftBridge"
        # Asterisk tells an application about a bridge's end only when it is subscribed to it.
        await client.applications.handle().subscribe_to(f"bridge:{bridge.id}")
        async with bridge.subscribe("BridgeDestroyed") as destroyed:
            await bridge.destroy()  # Asterisk destroys the bridge asynchronously
            await destroyed.next(timeout=10)
        with pytest.raises(ari_proxy.NotFoundError):
            await bridge.data()
        for channel in (first, second):
            await channel.hangup()


async def test_dtmf_both_ways(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(30):
        # The `dtmf` extension answers and sends 1234# towards our channel.
        staged = await client.channels.stage_originate("Local/dtmf@default")
        async with staged.subscribe("ChannelDtmfReceived") as events:
            channel = await staged.execute()
            digits = "".join([(await events.next(timeout=10)).digit for _ in range(5)])  # type: ignore[attr-defined]
        assert digits == "1234#"
        await channel.send_dtmf("12", between=0.1)
        await channel.hangup()


async def test_variables(client: ari_proxy.Client, served_by: str) -> None:
    async with asyncio.timeout(20):
        channel = await in_stasis(client)
        await channel.set_variable("CONFORMANCE", "yes")
        assert await channel.get_variable("CONFORMANCE") == "yes"
        assert (await channel.get_variable("CHANNEL(name)")).startswith("Local/wait@default-")
        if served_by == "go":
            # Several variables at once are kinds of ours (docs/protocol.md, "Our own kinds"):
            # the Go server answers "Not implemented", which reads as UnknownKindError.
            with pytest.raises(ari_proxy.UnknownKindError):
                await channel.set_variables({"A1": "x", "B2": "y"})
            with pytest.raises(ari_proxy.UnknownKindError):
                await channel.get_variables(["A1", "B2"])
        else:
            await channel.set_variables({"A1": "x", "B2": "y"})
            assert await channel.get_variables(["A1", "B2"]) == {"A1": "x", "B2": "y"}
        with pytest.raises(ari_proxy.NotFoundError):
            await channel.get_variable("NEVER_SET_ANYWHERE")
        name = f"CONF_{client.application.replace('-', '_').upper()}"
        await client.asterisk.set_variable(name, "global")
        assert await client.asterisk.get_variable(name) == "global"
        await channel.hangup()


async def test_listing(client: ari_proxy.Client, served_by: str) -> None:
    async with asyncio.timeout(20):
        channel = await in_stasis(client)
        ids = {h.id for h in await client.channels.list()}
        assert channel.id in ids
        # Asterisk lists every channel, the Local channel's other half (outside Stasis) too.
        assert f"{channel.id};2" in ids
        listed = [h for h in await client.channels.list() if h.id == channel.id]
        assert listed[0].node == channel.node
        sounds = await client.sounds.list(lang="en")
        if served_by == "go":
            # The Go server reads Asterisk's sound list into structs without the id, so its
            # keys carry none (tests/vectors/README.md, item 1): one key per sound, all alike.
            assert len(sounds) > 100
            assert {h.id for h in sounds} == {""}
        else:
            assert "hello-world" in {h.id for h in sounds}
        modules = {h.id for h in await client.asterisk.modules.list()}
        assert "res_stasis.so" in modules
        apps = {h.id for h in await client.applications.list()}
        assert client.application in apps
        await channel.hangup()


async def test_errors_map_to_the_same_exceptions(client: ari_proxy.Client, served_by: str) -> None:
    async with asyncio.timeout(20):
        missing = client.channels.handle("conformance-missing")
        with pytest.raises(ari_proxy.NotFoundError) as info:
            await missing.answer()
        assert info.value.status == 404
        assert "404" in str(info.value)
        if served_by == "go":
            # The Go server passes on only "Non-2XX response: 404 Not Found": the status is
            # read back from that text, Asterisk's own explanation is lost on the way.
            assert info.value.message == ""
        else:
            assert info.value.message == "Channel not found"
        with pytest.raises(ari_proxy.NotFoundError):
            await client.bridges.handle("conformance-missing").data()
        with pytest.raises(ari_proxy.ConflictError):
            await client.asterisk.modules.handle("res_stasis.so").load()
        channel = await in_stasis(client)
        with pytest.raises(ari_proxy.BadRequestError):  # Asterisk 22: 400 "Channel not found"
            bridge = await client.bridges.create(node=channel.node)
            try:
                await bridge.add_channel("conformance-missing")
            finally:
                await bridge.destroy()
        await channel.hangup()


async def test_listen_gives_each_call_with_its_events(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(30):
        async with client.listen() as calls:
            placed = [await client.channels.originate("Local/wait@default") for _ in range(3)]
            taken = [await calls.next(timeout=10) for _ in range(3)]
            assert {c.channel.id for c in taken} == {c.id for c in placed}
            for call in taken:
                assert call.dialog
                await call.channel.hangup()
                kinds = []
                while "ChannelDestroyed" not in kinds:
                    kinds.append(event_type(await call.events.next(timeout=10)))
                assert "StasisEnd" in kinds
                await call.close()


async def test_child_client_owns_its_subscriptions(client: ari_proxy.Client) -> None:
    async with asyncio.timeout(20):
        child = client.child()
        parent_events = await client.subscribe("StasisStart")
        child_events = await child.subscribe("StasisStart")
        await child.close()
        assert child.closed and not client.closed
        channel = await client.channels.originate("Local/wait@default")
        assert (await parent_events.next(timeout=10)).channel.id == channel.id  # type: ignore[attr-defined]
        with pytest.raises(ari_proxy.ClientClosedError):
            await child_events.next(timeout=1)
        with pytest.raises(ari_proxy.ClientClosedError):
            await child.channels.handle(channel.id).answer()
        parent_events.close()
        await channel.hangup()
