"""Applications (subscriptions, event filters), device states, endpoints, user events and the
mailboxes Debian's Asterisk lacks, against the real Asterisk 22 sandbox."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from ari_proxy._exceptions import (
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    UnprocessableEntityError,
)
from ari_proxy.api import event_type
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import ChannelUserevent, DeviceStateChanged

pytestmark = pytest.mark.integration


async def test_application_list_and_data(client: AriClient) -> None:
    async with asyncio.timeout(10):
        assert client.applications.handle() in await client.applications.list()
        data = await client.applications.handle().data()
        assert data.name == client.application
        assert (data.channel_ids, data.bridge_ids, data.events_allowed) == ([], [], [])
        with pytest.raises(NotFoundError) as missing:
            await client.applications.handle("no-such-application").data()
        assert missing.value.message == "Application not found"


async def test_subscribe_to_and_unsubscribe_from_event_sources(
    client: AriClient, stasis_channel
) -> None:
    async with asyncio.timeout(10):
        app = client.applications.handle()
        device = f"Stasis:{client.application}"
        await app.subscribe_to("endpoint:PJSIP/sipp")
        await app.subscribe_to(f"deviceState:{device}")
        data = await app.data()
        assert (data.endpoint_ids, data.device_names) == (["PJSIP/sipp"], [device])

        await app.unsubscribe_from("endpoint:PJSIP/sipp")
        await app.unsubscribe_from(f"deviceState:{device}")
        data = await app.data()
        assert (data.endpoint_ids, data.device_names) == ([], [])
        with pytest.raises(UnprocessableEntityError) as not_subscribed:
            await app.unsubscribe_from("endpoint:PJSIP/sipp")
        assert not_subscribed.value.message == "Event source was not subscribed to"

        with pytest.raises(BadRequestError) as scheme:
            await app.subscribe_to("bogus:x")
        assert scheme.value.message == "Invalid event source URI scheme"
        with pytest.raises(UnprocessableEntityError) as missing:
            await app.subscribe_to("channel:no-such-channel")
        assert missing.value.message == "Event source does not exist"
        # The kind words the error as Go does, naming the application and the source.
        assert str(missing.value).startswith(
            f"Error subscribing application '{client.application}' for event source "
            "'channel:no-such-channel': Non-2XX response: 422"
        )
        channel = await stasis_channel()
        await app.subscribe_to(f"channel:{channel.id}")
        assert channel.id in (await app.data()).channel_ids


async def test_event_filter_really_filters(client: AriClient, expect, connect_client) -> None:
    # A second application, without a filter, watches the channel: its ChannelDestroyed
    # tells when Asterisk has sent out the hangup's events.
    witness = await connect_client(f"{client.application}-witness")
    async with (
        asyncio.timeout(15),
        client.subscribe() as events,
        witness.subscribe("ChannelDestroyed") as destroyed,
    ):
        app = client.applications.handle()

        # Disallowed: a user event is dropped by Asterisk, the events after it still come.
        data = await app.set_event_filter(disallowed=["ChannelUserevent"])
        assert (data.events_allowed, data.events_disallowed) == ([], [{"type": "ChannelUserevent"}])
        await client.events.user_event("filtered-out")
        staged = await client.channels.stage_originate("Local/wait@default")
        channel = await staged.execute()
        first = await expect(events)
        assert event_type(first) != "ChannelUserevent"
        await expect(events, "StasisStart", where=lambda e: e.channel.id == channel.id)
        await witness.applications.handle().subscribe_to(f"channel:{channel.id}")

        # Allowed only: channel events stop, user events come through.
        data = await app.set_event_filter(allowed=["ChannelUserevent"])
        assert (data.events_allowed, data.events_disallowed) == ([{"type": "ChannelUserevent"}], [])
        await channel.hangup()  # StasisEnd, ChannelDestroyed, ...: all filtered
        # So that the hangup's events precede the user event below (had the filter let them
        # through): the witness got the last of them, dispatched to both applications at once.
        await expect(destroyed, where=lambda e: e.channel.id == channel.id)
        await client.events.user_event("let-through")
        seen = []  # events of the originate still in flight may come first; none of the hangup
        while not (seen and event_type(seen[-1]) == "ChannelUserevent"):
            seen.append(await expect(events))
        assert seen[-1].eventname == "let-through"
        hangup_events = {"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}
        assert not hangup_events & {event_type(e) for e in seen}

        data = await app.set_event_filter()  # no filter: everything again
        assert (data.events_allowed, data.events_disallowed) == ([], [])
        await client.events.user_event("after-reset")
        await expect(events, "ChannelUserevent", where=lambda e: e.eventname == "after-reset")


async def test_device_states(client: AriClient, expect) -> None:
    async with asyncio.timeout(10):
        name = f"Stasis:{client.application}-{secrets.token_hex(3)}"
        device = client.device_states.handle(name)
        assert (await device.data()).state == "UNKNOWN"  # never set: not an error
        await client.applications.handle().subscribe_to(f"deviceState:{name}")
        async with client.subscribe("DeviceStateChanged") as events:
            await device.update("INUSE")
            changed = await expect(events)
            assert isinstance(changed, DeviceStateChanged)
            assert (changed.device_state.name, changed.device_state.state) == (name, "INUSE")
            await device.update("BUSY")
            changed = await expect(events)
            assert changed.device_state.state == "BUSY"
        assert (await device.data()).state == "BUSY"
        assert device in await client.device_states.list()

        with pytest.raises(InternalServerError) as bad_state:
            await device.update("SLEEPY")
        # Asterisk 22 answers 500 with this message for an unknown state name.
        assert (bad_state.value.status, bad_state.value.message) == (500, "Unknown device")
        pjsip = client.device_states.handle("PJSIP/sipp")
        assert (await pjsip.data()).state == "UNAVAILABLE"  # a device Asterisk itself tracks
        for operation in (lambda: pjsip.update("BUSY"), pjsip.delete):
            with pytest.raises(ConflictError) as uncontrolled:
                await operation()
            assert uncontrolled.value.message == "Uncontrolled device specified"

        await device.delete()
        assert device not in await client.device_states.list()
        assert (await device.data()).state == "UNKNOWN"
        await device.delete()  # deleting an unknown Stasis device is accepted


async def test_endpoints(client: AriClient) -> None:
    async with asyncio.timeout(10):
        everything = await client.endpoints.list()
        assert client.endpoints.handle("PJSIP", "sipp") in everything
        pjsip = await client.endpoints.list("PJSIP")
        assert pjsip and all(e.id.startswith("PJSIP/") for e in pjsip)
        data = await client.endpoints.handle("PJSIP", "sipp").data()
        assert (data.technology, data.resource, data.state, data.channel_ids) == (
            "PJSIP",
            "sipp",
            "offline",
            [],
        )
        with pytest.raises(NotFoundError) as tech:
            await client.endpoints.list("NOPE")
        assert tech.value.message == "No Endpoints found - invalid tech NOPE"
        with pytest.raises(NotFoundError) as missing:
            await client.endpoints.handle("PJSIP", "no-such-endpoint").data()
        assert missing.value.message == "Endpoint not found"


async def test_user_events(client: AriClient, stasis_channel, janitor, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        bridge = await client.bridges.create()
        janitor.add(bridge.destroy)
        async with client.subscribe("ChannelUserevent") as events:
            await client.events.user_event("Plain", variables={"k": "v"})
            plain = await expect(events)
            assert isinstance(plain, ChannelUserevent)
            assert (plain.eventname, plain.userevent, plain.channel) == (
                "Plain",
                {"k": "v", "eventname": "Plain"},
                None,
            )
            await client.events.user_event(
                "Sourced", sources=[f"channel:{channel.id}", f"bridge:{bridge.id}"]
            )
            sourced = await expect(events)
            assert sourced.channel.id == channel.id and sourced.bridge.id == bridge.id

        with pytest.raises(UnprocessableEntityError) as source:
            await client.events.user_event("x", sources=["channel:no-such-channel"])
        assert source.value.message == "Event source was not found"
        with pytest.raises(NotFoundError) as app:
            await client.events.user_event("x", application="no-such-application")
        assert app.value.message == "Application not found"


async def test_mailboxes_are_missing_from_debian_asterisk(client: AriClient) -> None:
    """Debian builds Asterisk 22 without res_ari_mailboxes: ARI has no such routes (the
    operations themselves are tested against the fake ARI server)."""
    async with asyncio.timeout(10):
        mailbox = client.mailboxes.handle("1000@default")
        for operation in (
            client.mailboxes.list,
            mailbox.data,
            lambda: mailbox.update(1, 2),
            mailbox.delete,
        ):
            with pytest.raises(NotFoundError) as missing:
                await operation()
            assert (missing.value.status, missing.value.message) == (404, "Resource not found")
