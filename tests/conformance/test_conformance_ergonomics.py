"""The ergonomic layer behaves the same through every way of reaching Asterisk: error texts
with Asterisk's message, handlers, handles from events, and the raw escape hatch (native only)."""

from __future__ import annotations

import asyncio

import pytest

import ari_proxy
from ari_proxy.spec.models import ChannelDestroyed, ChannelUserevent, StasisStart


async def test_error_text_carries_asterisks_message(
    client: ari_proxy.Client, served_by: str
) -> None:
    async with asyncio.timeout(20):
        with pytest.raises(ari_proxy.NotFoundError) as info:
            await client.channels.handle("conformance-missing").answer()
    error = info.value
    if served_by == "go":
        # Go's reply carries only its text: there is no message to show.
        assert (error.message, str(error)) == ("", error.text)
    else:  # the same text, native or through our server
        assert error.message == "Channel not found"
        assert str(error) == "Non-2XX response: 404 Not Found: Channel not found"
    assert error.text == "Non-2XX response: 404 Not Found"  # Go's wording, unchanged


async def test_a_handler_acts_on_the_events_channel(client: ari_proxy.Client) -> None:
    done: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    @client.on("StasisStart")
    async def on_start(event: StasisStart) -> None:
        channel = client.handle_of(event.channel, event)
        assert channel.node == event.asterisk_id != ""  # unicast to the channel's node
        await channel.answer()
        state = (await channel.data()).state
        async with channel.subscribe("ChannelDestroyed") as ends:
            await channel.hangup()
            gone = await ends.next(timeout=10)
        assert isinstance(gone, ChannelDestroyed)
        done.set_result((gone.channel.id, state))

    async with asyncio.timeout(30):
        await on_start
        caller = await client.channels.originate("Local/wait@default")
        assert await done == (caller.id, "Up")
    assert (on_start.handled, on_start.failed) == (1, 0)
    on_start.close()


async def test_a_handler_on_a_channel_in_a_dialog(client: ari_proxy.Client) -> None:
    scoped = client.scoped()  # events of the dialog's entities only, once they are bound
    try:
        async with asyncio.timeout(30):
            staged = await scoped.channels.stage_originate("Local/wait@default")
            async with staged.subscribe("StasisStart") as started:
                channel = await staged.execute()
                await started.next(timeout=10)
            names: asyncio.Queue[str] = asyncio.Queue()

            async def on_user_event(event: ChannelUserevent) -> None:
                await names.put(event.eventname)

            handler = await channel.on("ChannelUserevent", on_user_event)
            for name in ("first", "second", "third"):
                await channel.user_event(name)
            assert [await names.get() for _ in range(3)] == ["first", "second", "third"]
            assert (handler.handled, handler.failed) == (3, 0)
            await channel.hangup()
    finally:
        await scoped.close()
    assert handler.closed  # closing the client closed its handlers


async def test_the_escape_hatch_is_native_only(client: ari_proxy.Client, served_by: str) -> None:
    async with asyncio.timeout(20):
        if served_by == "native":
            info = await client.request("GET", "/asterisk/info", query={"only": "system"})
            assert isinstance(info, dict) and set(info) == {"system"}
            return
        with pytest.raises(ari_proxy.UnknownKindError, match="native client only"):
            await client.request("GET", "/asterisk/info")
