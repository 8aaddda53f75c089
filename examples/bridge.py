"""Put every call into one shared mixing bridge, announcing joins and leaves
(the Go project's `bridge` example)."""

from __future__ import annotations

import asyncio
import logging

import ari_proxy

log = logging.getLogger("bridge")


class Conference:
    """One bridge for every caller, created on the first call."""

    def __init__(self, client: ari_proxy.Client) -> None:
        self.client = client
        self.bridge: ari_proxy.BridgeHandle | None = None
        self.joined = 0
        self.left = 0
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None

    async def ensure(self, near: ari_proxy.ChannelHandle) -> ari_proxy.BridgeHandle:
        async with self._lock:
            if self.bridge is None:
                # The bridge lives on the caller's Asterisk node.
                staged = await self.client.bridges.stage_create(
                    "mixing", name="conference", node=near.node
                )
                events = await staged.subscribe(
                    "ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed"
                )
                self.bridge = await staged.execute()
                self._watcher = asyncio.create_task(self._watch(self.bridge, events))
            return self.bridge

    async def _watch(self, bridge: ari_proxy.BridgeHandle, events: ari_proxy.Subscription) -> None:
        async with events:
            async for event in events:
                kind = ari_proxy.event_type(event)
                if kind == "BridgeDestroyed":
                    return
                sound = (
                    "sound:confbridge-join"
                    if kind == "ChannelEnteredBridge"
                    else "sound:confbridge-leave"
                )
                if kind == "ChannelEnteredBridge":
                    self.joined += 1
                else:
                    self.left += 1
                log.info("%s: %s", kind, event.channel.name)  # type: ignore[attr-defined]
                try:
                    await bridge.play(sound)
                except ari_proxy.AriError as exc:
                    log.warning("cannot play %s: %s", sound, exc)

    async def close(self) -> None:
        if self.bridge is not None:
            try:
                await self.bridge.destroy()
            except ari_proxy.NotFoundError:
                pass
        if self._watcher is not None:
            await asyncio.wait_for(self._watcher, 10)


async def run(client: ari_proxy.Client, calls: int | None = None) -> Conference:
    """Bridge `calls` calls (forever when None); returns the conference for inspection."""
    conference = Conference(client)
    async with client.listen() as incoming:
        while calls is None or calls > 0:
            call = await incoming.next()
            await call.channel.answer()
            bridge = await conference.ensure(call.channel)
            await bridge.add_channel(call.channel)
            log.info("channel %s added to bridge", call.channel.id)
            calls = None if calls is None else calls - 1
    return conference


if __name__ == "__main__":
    from _common import main

    async def forever(client: ari_proxy.Client, calls: int | None) -> None:
        conference = await run(client, calls)
        await asyncio.Event().wait() if calls is None else await conference.close()

    main(forever, __doc__)
