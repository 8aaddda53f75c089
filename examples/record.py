"""Answer each call, record it until a key is pressed (or silence), keep the recording as
`test-recording`, and hang up (the Go project's `record` example)."""

from __future__ import annotations

import logging

import ari_proxy

log = logging.getLogger("record")


async def handle(call: ari_proxy.Call, name: str, max_duration: float) -> None:
    async with call:
        await call.channel.answer()
        staged = await call.channel.stage_record(
            terminate_on="any", if_exists="overwrite", max_duration=max_duration
        )
        async with staged.subscribe("RecordingFinished", "RecordingFailed") as done:
            recording = await staged.execute()
            event = await done.next(timeout=max_duration + 30)
        if ari_proxy.event_type(event) == "RecordingFailed":
            log.error("recording failed: %s", event)
            return
        stored = recording.stored()
        try:
            await call.client.recordings.stored(name).delete()
        except ari_proxy.NotFoundError:
            pass
        await stored.copy(name)
        await stored.delete()
        log.info("completed recording %s", name)
        await call.channel.hangup()


async def run(
    client: ari_proxy.Client,
    calls: int | None = None,
    name: str = "test-recording",
    max_duration: float = 10,
) -> None:
    """Handle `calls` calls (forever when None)."""
    async with client.listen() as incoming:
        while calls is None or calls > 0:
            call = await incoming.next()
            await handle(call, name, max_duration)
            calls = None if calls is None else calls - 1


if __name__ == "__main__":
    from _common import main

    main(run, __doc__)
