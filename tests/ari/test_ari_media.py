"""Playbacks, recordings (live and stored) and sounds, against the real Asterisk 22 sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ari_proxy._exceptions import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import PlaybackFinished, PlaybackStarted, RecordingFinished

pytestmark = pytest.mark.integration


def assert_real_wav(wav: bytes, *, min_bytes: int = 8000) -> None:
    """A RIFF/WAVE file with a PCM header and more than a header's worth of audio."""
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    assert int.from_bytes(wav[4:8], "little") == len(wav) - 8
    assert wav[36:40] == b"data" and int.from_bytes(wav[40:44], "little") == len(wav) - 44
    assert len(wav) > min_bytes, f"only {len(wav)} bytes: no audio was recorded"


async def test_channel_playback_events_and_controls(
    client: AriClient, stasis_channel, expect, until_gone
) -> None:
    async with asyncio.timeout(15):
        channel = await stasis_channel()
        staged = await channel.stage_play(["sound:hello-world", "sound:beep"], lang="en")
        async with staged.subscribe("PlaybackStarted", "PlaybackFinished") as events:
            playback = await staged.execute()
            started = await expect(events, "PlaybackStarted")
            assert isinstance(started, PlaybackStarted) and started.playback.id == playback.id
            assert started.playback.target_uri == f"channel:{channel.id}"

            assert await client.playbacks.get(playback.id) == playback
            data = await playback.data()
            assert (data.media_uri, data.next_media_uri) == ("sound:hello-world", "sound:beep")
            assert (data.state, data.language) == ("playing", "en")
            await playback.pause()
            assert (await playback.data()).state == "paused"
            await playback.unpause()
            assert (await playback.data()).state == "playing"
            await playback.forward()
            await playback.reverse()
            await playback.restart()
            with pytest.raises(BadRequestError) as bogus:
                await playback.control("bogus")
            assert bogus.value.message == "Invalid operation bogus"

            await playback.stop()
            finished = await expect(events, "PlaybackFinished")
        assert isinstance(finished, PlaybackFinished) and finished.playback.id == playback.id
        await until_gone(playback.data)
        with pytest.raises(NotFoundError) as gone:
            await playback.stop()
        assert gone.value.message == "Playback not found"


async def test_playback_runs_to_its_end(client: AriClient, stasis_channel, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        staged = await channel.stage_play("sound:beep")
        async with staged.subscribe("PlaybackFinished") as events:
            await staged.execute()
            finished = await expect(events)
        assert (finished.playback.state, finished.playback.media_uri) == ("done", "sound:beep")


async def test_playback_of_a_missing_sound_fails(client: AriClient, stasis_channel, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        async with client.subscribe("PlaybackFinished") as events:
            playback = await channel.play("sound:no-such-sound")
            finished = await expect(events, where=lambda e: e.playback.id == playback.id)
        assert finished.playback.state == "failed"

        with pytest.raises(NotFoundError) as missing:
            await client.channels.handle("no-such-channel").play("sound:beep")
        assert missing.value.message == "Channel not found"
        # The kind checks the channel first and words the error as Go does.
        assert str(missing.value) == (
            "failed to get data: Error getting data for channel 'no-such-channel': "
            "Non-2XX response: 404 Not Found: Channel not found"
        )


async def test_live_recording_operations(
    client: AriClient, stasis_channel, janitor, expect, until_gone, tmp_path: Path
) -> None:
    """The `playback` extension plays hello-world to the Stasis half, which records it."""
    async with asyncio.timeout(20):
        channel = await stasis_channel("playback")
        staged = await channel.stage_record(format="wav", max_duration=20, if_exists="fail")
        janitor.add(staged.handle.stored().delete)
        async with staged.subscribe("RecordingStarted", "RecordingFinished") as events:
            live = await staged.execute()
            started = await expect(events, "RecordingStarted")
            assert started.recording.name == live.id == staged.id
            assert await client.recordings.get_live(live.id) == live

            await live.pause()
            assert (await live.data()).state == "paused"
            await live.unpause()
            assert (await live.data()).state == "recording"
            await live.mute()
            await live.unmute()
            with pytest.raises(ConflictError) as taken:
                await channel.record(live.id, if_exists="fail")
            assert taken.value.message == (
                f"Recording '{live.id}' already exists and can not be overwritten"
            )
            await asyncio.sleep(1.2)  # pacing: record audio for a while (assert_real_wav)
            stored = await live.stop()
            finished = await expect(events, "RecordingFinished")
        assert isinstance(finished, RecordingFinished) and finished.recording.state == "done"
        await until_gone(live.data)  # no longer live, a moment after it finished

        # --- the stored recording: list, data, download, copy, delete -------------------------
        assert stored in await client.recordings.list_stored()
        assert await client.recordings.get_stored(live.id) == stored
        data = await stored.data()
        assert (data.name, data.format) == (live.id, "wav")

        wav = await stored.read()
        assert_real_wav(wav)
        chunks = []
        async with stored.open() as stream:
            async for chunk in stream:
                chunks.append(chunk)
        assert b"".join(chunks) == wav
        target = tmp_path / "recording.wav"
        assert await stored.save(target) == len(wav)
        assert target.read_bytes() == wav

        copy = await stored.copy(f"{live.id}-copy")
        janitor.add(copy.delete)
        assert copy.id == f"{live.id}-copy"
        assert await copy.read() == wav
        with pytest.raises(ConflictError) as exists:
            await stored.copy(copy.id)
        assert exists.value.message == "A recording with the same name already exists on the system"

        await copy.delete()
        await stored.delete()
        names = {r.id for r in await client.recordings.list_stored()}
        assert live.id not in names and copy.id not in names
        with pytest.raises(NotFoundError) as deleted:
            await stored.delete()
        assert deleted.value.message == "Recording not found"
        with pytest.raises(NotFoundError):
            await stored.read()


async def test_cancelled_recording_leaves_no_file(
    client: AriClient, stasis_channel, expect, until_gone
) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel("playback")
        async with client.subscribe("RecordingStarted", "RecordingFinished") as events:
            live = await channel.record(max_duration=10)
            await expect(events, "RecordingStarted")
            await live.cancel()
            await expect(events, "RecordingFinished", where=lambda e: e.recording.name == live.id)
        await until_gone(live.data)
        with pytest.raises(NotFoundError):
            await live.stored().data()


async def test_recording_errors(client: AriClient, stasis_channel) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        with pytest.raises(UnprocessableEntityError) as unknown:
            await channel.record(format="no-such-format")
        assert unknown.value.message == "specified format is unknown on this system"
        with pytest.raises(NotFoundError):
            await client.recordings.get_live("no-such-recording")
        with pytest.raises(NotFoundError):
            await client.recordings.live("no-such-recording").stop()
        with pytest.raises(NotFoundError):
            await client.recordings.get_stored("no-such-recording")
        with pytest.raises(NotFoundError):
            await client.recordings.stored("no-such-recording").copy("anything")
        with pytest.raises(NotFoundError) as download:
            async with client.recordings.stored("no-such-recording").open():
                pass
        assert download.value.message == "Recording not found"


async def test_sounds(client: AriClient) -> None:
    async with asyncio.timeout(10):
        everything = await client.sounds.list()
        ids = {s.id for s in everything}
        assert len(ids) > 100 and {"hello-world", "beep", "digits/1"} <= ids
        assert {s.id for s in await client.sounds.list(lang="en")} == ids
        assert {s.id for s in await client.sounds.list(format="gsm")} == ids  # gsm prompts only
        for filters in ({"lang": "fr"}, {"format": "wav"}):
            with pytest.raises(NotFoundError) as none:
                await client.sounds.list(**filters)
            assert none.value.message == "No sounds found that matched the query"

        hello = await client.sounds.data("hello-world")
        assert hello.id == "hello-world"
        assert {(f.language, f.format) for f in hello.formats} >= {("en", "gsm")}
        assert (await client.sounds.handle("digits/1").data()).id == "digits/1"
        with pytest.raises(NotFoundError) as missing:
            await client.sounds.data("no-such-sound")
        assert missing.value.message == "Sound not found"
