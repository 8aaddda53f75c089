"""Hostile IDs stay data: every ID is percent-encoded as one path segment (or query value), so it
reaches the resource it names and no other, against the real Asterisk 22 sandbox.

Positive proofs where Asterisk stores or echoes the name (device states, global and channel
variables, bridge, channel and playback IDs, recording names, user event names, endpoint
technologies, configuration IDs); negative proofs elsewhere: the 404 carries the message of the
resource addressed ("Channel not found", not ARI's "Resource not found" for an unknown route,
and certainly not the data of `/asterisk/info`).
"""

from __future__ import annotations

import asyncio

import pytest

from ari_proxy._exceptions import BadRequestError, NotFoundError
from ari_proxy.ari import AriClient

pytestmark = pytest.mark.integration

HOSTILE = ["../x", "a/b", "a?b=c", "a b", "%2e%2e", "../asterisk/info", "#frag", "..%2f"]
# Recording names are file names too: no "/" (Asterisk would make a subdirectory) and no "."
# (Asterisk's copy takes what follows the last "." for a file extension, see below).
FILE_SAFE = ["a?b=c d", "%2e%2e", "#frag", "a%2Fb", "x&y=z;w"]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_ids_reach_only_the_resource_they_name(
    client: AriClient, hostile: str
) -> None:
    async with asyncio.timeout(15):
        not_found = {
            "Channel not found": [
                client.channels.handle(hostile).data,
                client.channels.handle(hostile).answer,
                client.channels.handle(hostile).hangup,
                lambda: client.channels.handle(hostile).play("sound:beep"),
            ],
            "Provided channel was not found": [
                lambda: client.channels.handle(hostile).get_variable("X")
            ],
            "Bridge not found": [client.bridges.handle(hostile).data],
            "Playback not found": [client.playbacks.handle(hostile).data],
            "Recording not found": [
                client.recordings.live(hostile).data,
                client.recordings.live(hostile).stop,
                client.recordings.stored(hostile).data,
                client.recordings.stored(hostile).read,
                client.recordings.stored(hostile).delete,
            ],
            "Module could not be found in running modules": [
                client.asterisk.modules.handle(hostile).data
            ],
            "Module not found in running modules": [client.asterisk.modules.handle(hostile).reload],
            "Sound not found": [client.sounds.handle(hostile).data],
            "Log channel does not exist": [
                client.asterisk.logging.handle(hostile).rotate,
                client.asterisk.logging.handle(hostile).delete,
            ],
            "Endpoint not found": [client.endpoints.handle("PJSIP", hostile).data],
            "Application not found": [client.applications.handle(hostile).data],
            f"Object with id '{hostile}' not found": [
                lambda: client.asterisk.config.get("res_pjsip", "endpoint", hostile)
            ],
            f"No Endpoints found - invalid tech {hostile}": [
                lambda: client.endpoints.list(hostile)
            ],
        }
        for message, operations in not_found.items():
            for operation in operations:
                with pytest.raises(NotFoundError) as refused:
                    await operation()
                assert refused.value.message == message, operation

        # Device state names are echoed back: the name arrived whole.
        echoed = await client.device_states.handle(hostile).data()
        assert echoed.name == hostile


async def test_a_channel_id_cannot_reach_asterisk_info(client: AriClient) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(NotFoundError) as refused:
            await client.channels.handle("../asterisk/info").data()
        assert (refused.value.status, refused.value.message) == (404, "Channel not found")
        with pytest.raises(NotFoundError):
            await client.channels.get("../../ari/asterisk/info")


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_names_are_stored_exactly(
    client: AriClient, hostile: str, janitor, expect
) -> None:
    async with asyncio.timeout(15):
        variable = f"G{hostile}"
        await client.asterisk.set_variable(variable, f"value {hostile}")
        assert await client.asterisk.get_variable(variable) == f"value {hostile}"

        bridge = await client.bridges.create(bridge_id=f"br-{hostile}", name=hostile)
        janitor.add(bridge.destroy)
        data = await bridge.data()
        assert (data.id, data.name) == (f"br-{hostile}", hostile)
        assert f"br-{hostile}" in {b.id for b in await client.bridges.list()}
        await bridge.destroy()

        staged = await client.channels.stage_originate(
            "Local/wait@default", channel_id=f"ch-{hostile}"
        )
        async with staged.subscribe("StasisStart") as started:
            channel = await staged.execute()
            janitor.add(channel.hangup)
            assert (await expect(started)).channel.id == f"ch-{hostile}"
        assert (await channel.data()).id == f"ch-{hostile}"
        assert f"ch-{hostile}" in {c.id for c in await client.channels.list()}
        await channel.set_variable(f"V-{hostile}", hostile)
        assert await channel.get_variable(f"V-{hostile}") == hostile
        assert await channel.get_variables([f"V-{hostile}"]) == {f"V-{hostile}": hostile}

        playback = await channel.play("sound:hello-world", playback_id=f"pb-{hostile}")
        assert (await playback.data()).id == f"pb-{hostile}"
        assert (await playback.data()).target_uri == f"channel:ch-{hostile}"
        await playback.stop()

        async with client.subscribe("ChannelUserevent") as events:
            await client.events.user_event(hostile)
            assert (await expect(events)).eventname == hostile


async def test_hostile_device_state_names(client: AriClient, janitor) -> None:
    """`Stasis:a/b?c=d e` is stored and read back whole. Asterisk 22's *list* shows a stored
    name only from its last "/" on (it splits its astdb key there): an Asterisk quirk, not an
    encoding problem, as the exact reads and the untouched `Stasis:b?c=d e` show."""
    async with asyncio.timeout(10):
        tag = client.application
        slashed = client.device_states.handle(f"Stasis:{tag}/b?c=d e")
        plain = client.device_states.handle(f"Stasis:{tag}?c=d e%2e%2e#f")
        for device in (slashed, plain):
            janitor.add(device.delete)
            await device.update("ONHOLD")
            data = await device.data()
            assert (data.name, data.state) == (device.id, "ONHOLD")
        listed = {d.id for d in await client.device_states.list()}
        assert plain.id in listed  # exactly
        assert "Stasis:b?c=d e" in listed and slashed.id not in listed  # the quirk
        assert (await client.device_states.handle("Stasis:b?c=d e").data()).state == "UNKNOWN"
        await slashed.delete()
        await plain.delete()
        assert (await plain.data()).state == "UNKNOWN"
        assert (await slashed.data()).state != "ONHOLD"
        listed = {d.id for d in await client.device_states.list()}
        assert plain.id not in listed and "Stasis:b?c=d e" not in listed


@pytest.mark.parametrize("name", FILE_SAFE)
async def test_hostile_recording_names(
    client: AriClient, stasis_channel, janitor, name: str
) -> None:
    async with asyncio.timeout(15):
        channel = await stasis_channel("playback")
        staged = await channel.stage_record(f"rec-{name}", max_duration=5)
        async with staged.subscribe("RecordingStarted") as started:
            live = await staged.execute()
            janitor.add(live.stored().delete)
            assert (await live.data()).name == f"rec-{name}"
            await started.next(timeout=5)  # stopped once really recording
        stored = await live.stop()
        assert f"rec-{name}" in {r.id for r in await client.recordings.list_stored()}
        assert (await stored.data()).name == f"rec-{name}"
        assert (await stored.read())[:4] == b"RIFF"
        copy = await stored.copy(f"copy-{name}")
        janitor.add(copy.delete)
        assert (await client.recordings.get_stored(f"copy-{name}")).id == f"copy-{name}"
        await copy.delete()
        await stored.delete()
        with pytest.raises(NotFoundError):
            await stored.data()


async def test_recording_copy_drops_a_dotted_suffix(
    client: AriClient, stasis_channel, janitor
) -> None:
    """Asterisk 22 quirk: copyStored treats what follows the last "." of the destination as a
    file extension and drops it, so "copy-x.y" is stored as "copy-x" (the source name keeps its
    dot). The name travelled intact: Asterisk cut it on purpose."""
    async with asyncio.timeout(15):
        channel = await stasis_channel("playback")
        staged = await channel.stage_record(f"{client.application}-a.b", max_duration=5)
        async with staged.subscribe("RecordingStarted") as started:
            live = await staged.execute()
            janitor.add(live.stored().delete)
            await started.next(timeout=5)  # stopped once really recording
        stored = await live.stop()
        assert (await stored.data()).name == f"{client.application}-a.b"
        await stored.copy(f"{client.application}-copy-x.y")
        truncated = client.recordings.stored(f"{client.application}-copy-x")
        janitor.add(truncated.delete)
        names = {r.id for r in await client.recordings.list_stored()}
        assert truncated.id in names and f"{client.application}-copy-x.y" not in names


@pytest.mark.parametrize("dots", [".", ".."])
async def test_dot_segments_are_refused_before_any_request(client: AriClient, dots: str) -> None:
    """URL normalisation would drop a "." or ".." segment and so change the route: the path
    builder refuses them (ValueError) whatever the position."""
    async with asyncio.timeout(10):
        channel = client.channels.handle("some-channel")
        bridge = client.bridges.handle("some-bridge")
        operations = [
            client.channels.handle(dots).data,
            client.channels.handle(dots).hangup,
            client.bridges.handle(dots).data,
            client.playbacks.handle(dots).stop,
            client.recordings.live(dots).stop,
            client.recordings.stored(dots).read,
            client.recordings.stored(dots).delete,
            client.device_states.handle(dots).data,
            client.asterisk.modules.handle(dots).load,
            client.sounds.handle(dots).data,
            client.asterisk.logging.handle(dots).delete,
            client.applications.handle(dots).data,
            client.mailboxes.handle(dots).data,
            client.endpoints.handle("PJSIP", dots).data,
            client.endpoints.handle(dots, "sipp").data,
            lambda: client.endpoints.list(dots),
            lambda: client.asterisk.config.get("res_pjsip", "endpoint", dots),
            lambda: client.asterisk.config.get(dots, "endpoint", "sipp"),
            lambda: client.asterisk.logging.create(dots, "notice"),
            lambda: client.events.user_event(dots),
            lambda: channel.snoop(spy="in", snoop_id=dots),
            lambda: bridge.set_video_source(dots),
        ]
        for operation in operations:
            with pytest.raises(ValueError, match="cannot be"):
                await operation()


async def test_empty_ids_are_refused_before_any_request(client: AriClient) -> None:
    """An empty entity ID in the key is refused by the kind table ("<kind> key not supplied",
    as Go words it); an empty ID in a path position taken from the payload by the path builder.
    Neither request is sent (see the fake ARI tests, which count requests)."""
    async with asyncio.timeout(10):
        for operation, kind in [
            (client.channels.handle("").data, "channel"),
            (client.bridges.handle("").destroy, "bridge"),
            (client.device_states.handle("").data, "devicestate"),
            (client.asterisk.modules.handle("").data, "module"),
            (lambda: client.events.user_event(""), "userevent"),
        ]:
            with pytest.raises(BadRequestError) as refused:
                await operation()
            assert str(refused.value) == f"{kind} key not supplied"
            assert isinstance(refused.value, BadRequestError) and refused.value.status == 400
        for operation in [
            lambda: client.endpoints.list(""),
            lambda: client.bridges.handle("b").set_video_source(""),
        ]:
            with pytest.raises(ValueError, match="cannot be ''"):
                await operation()
