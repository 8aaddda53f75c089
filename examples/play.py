"""Answer each call, play a sound to it, and hang up (the Go project's `play` example)."""

from __future__ import annotations

import asyncio
import logging

import ari_proxy

log = logging.getLogger("play")


async def handle(call: ari_proxy.Call, media: str) -> None:
    async with call:
        await call.channel.answer()
        # Stage, subscribe, then execute: the PlaybackFinished cannot be missed.
        staged = await call.channel.stage_play(media)
        async with staged.subscribe("PlaybackFinished") as finished:
            playback = await staged.execute()
            await finished.next(timeout=60)
        log.info("completed playback %s", playback.id)
        await call.channel.hangup()


async def run(
    client: ari_proxy.Client, calls: int | None = None, media: str = "sound:tt-monkeys"
) -> None:
    """Handle `calls` calls (forever when None)."""
    tasks = set()
    async with client.listen() as incoming:
        while calls is None or calls > 0:
            call = await incoming.next()
            task = asyncio.create_task(handle(call, media))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            calls = None if calls is None else calls - 1
        await asyncio.gather(*tasks)


if __name__ == "__main__":
    from _common import main

    main(run, __doc__)
