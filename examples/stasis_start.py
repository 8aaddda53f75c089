"""Follow each call's state from StasisStart to StasisEnd, and place sample calls
(the Go project's `stasisStart` example)."""

from __future__ import annotations

import asyncio
import logging

import ari_proxy

log = logging.getLogger("stasis_start")


async def handle(call: ari_proxy.Call) -> list[str]:
    """Answer, log every state change until the channel leaves the application; return them."""
    states: list[str] = []
    async with call:
        data = await call.channel.data()
        log.info("channel %s state %s", data.name, data.state)
        if data.state == "Down":  # created, not dialed (see create_call): place the call
            await call.channel.dial()
        elif data.state == "Up":  # answered before it reached us: nothing will change
            await call.channel.hangup()
        else:
            await call.channel.answer()
        async for event in call.events:
            kind = ari_proxy.event_type(event)
            if kind == "ChannelStateChange":
                states.append(event.channel.state)  # type: ignore[attr-defined]
                log.info("new channel state %s", states[-1])
                if states[-1] == "Up":
                    await call.channel.hangup()
            elif kind == "StasisEnd":
                log.info("got StasisEnd")
                break
    return states


async def create_call(
    client: ari_proxy.Client, endpoint: str = "Local/wait@default"
) -> ari_proxy.ChannelHandle:
    """Create (without dialing) a sample channel in this application, as the Go example does."""
    return await client.channels.create(endpoint, app=client.application)


async def run(client: ari_proxy.Client, calls: int | None = None) -> list[list[str]]:
    """Handle `calls` calls (forever when None); returns the states each call went through."""
    results: list[asyncio.Task[list[str]]] = []
    async with client.listen() as incoming:
        while calls is None or calls > 0:
            call = await incoming.next()
            log.info("got StasisStart for %s", call.channel.id)
            results.append(asyncio.create_task(handle(call)))
            calls = None if calls is None else calls - 1
        return list(await asyncio.gather(*results))


if __name__ == "__main__":
    from _common import main

    main(run, __doc__)
