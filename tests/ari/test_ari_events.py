"""Event delivery of the native client with real Asterisk events: subscriptions, overflow
policies, child clients, several applications, `subscribe_all` and `once`."""

from __future__ import annotations

import asyncio

import pytest

from ari_proxy._exceptions import ClientClosedError, SubscriptionOverflowError
from ari_proxy.api import Overflow, Subscription, event_type
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import ChannelUserevent
from ari_proxy.testing import wait_until

# The server tests' bounded wait, for state no event announces.

pytestmark = pytest.mark.integration


async def burst(client: AriClient, count: int, prefix: str = "burst") -> list[str]:
    """Raise `count` user events named `<prefix>-<i>`, one after the other; return the names."""
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        await client.events.user_event(name)
    return names


async def names_of(sub: Subscription, count: int) -> list[str]:
    return [(await sub.next(timeout=5)).eventname for _ in range(count)]


async def test_a_slow_subscriber_never_holds_up_the_others(client: AriClient) -> None:
    async with asyncio.timeout(30):
        dropped_before = client.hub.dropped
        async with (
            client.subscribe("ChannelUserevent", maxsize=5) as slow,
            client.subscribe("ChannelUserevent") as fast,
        ):
            received: list[str] = []

            async def read_all() -> None:
                while len(received) < 200:
                    received.append((await fast.next()).eventname)

            reader = asyncio.create_task(read_all())
            sent = await burst(client, 200)
            await asyncio.wait_for(reader, 10)
            assert received == sent  # every event, in order, while the slow one never read
            assert slow.qsize() == 5 and slow.dropped == 195
            assert client.hub.dropped - dropped_before == 195
            assert fast.dropped == 0 and fast.delivered == 200


@pytest.mark.parametrize("policy", list(Overflow), ids=lambda p: p.name)
async def test_overflow_policies(client: AriClient, policy: Overflow) -> None:
    async with asyncio.timeout(20):
        async with (
            client.subscribe("ChannelUserevent", maxsize=10, overflow=policy) as limited,
            client.subscribe("ChannelUserevent") as reference,
        ):
            await burst(client, 30, policy.name)
            order = await names_of(reference, 30)  # as Asterisk delivered them
            if policy is Overflow.DROP_NEWEST:
                assert limited.dropped == 20
                assert await names_of(limited, 10) == order[:10]
            elif policy is Overflow.DROP_OLDEST:
                assert limited.dropped == 20
                assert await names_of(limited, 10) == order[-10:]
            else:  # the 11th event closed it; nothing is counted after that
                assert limited.closed and limited.dropped == 1
                with pytest.raises(SubscriptionOverflowError):
                    await limited.next(timeout=1)
                with pytest.raises(SubscriptionOverflowError):  # and stays closed
                    async for _ in limited:
                        pass
            assert limited.qsize() == 0


async def test_many_subscribers_of_one_type_all_get_each_event(client: AriClient) -> None:
    async with asyncio.timeout(10):
        subs = [await client.subscribe("ChannelUserevent") for _ in range(20)]
        anything = await client.subscribe()
        await client.events.user_event("for-everyone", variables={"n": "1"})
        events = [await sub.next(timeout=5) for sub in [*subs, anything]]
        assert isinstance(events[0], ChannelUserevent) and events[0].eventname == "for-everyone"
        assert all(e is events[0] for e in events)  # decoded once, shared by all
        for sub in subs:
            sub.close()
        anything.close()
        assert all(sub.closed for sub in subs)


async def test_where_and_entity_filters(client: AriClient, stasis_channel) -> None:
    async with asyncio.timeout(10):
        first = await stasis_channel()
        second = await stasis_channel()
        async with (
            first.subscribe("ChannelUserevent") as of_first,
            client.subscribe("ChannelUserevent", where=lambda e: e.eventname == "wanted") as some,
        ):
            await second.user_event("wanted")
            await first.user_event("other")
            await first.user_event("wanted")
            mine = await of_first.next(timeout=5)
            assert (mine.eventname, mine.channel.id) == ("other", first.id)
            assert (await of_first.next(timeout=5)).channel.id == first.id
            wanted = [await some.next(timeout=5) for _ in range(2)]
            assert [e.channel.id for e in wanted] == [second.id, first.id]
            # Nothing else was let through: a last event that both take, raised after all the
            # others, is next in each (Asterisk sends an application's events in order).
            await first.user_event("wanted", {"last": "yes"})
            for sub in (of_first, some):
                assert (await sub.next(timeout=5)).userevent.get("last") == "yes"
            assert of_first.qsize() == 0 and some.qsize() == 0


async def test_once(client: AriClient) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(TimeoutError):
            await client.once("ChannelUserevent", timeout=0.3)
        waiter = asyncio.create_task(client.once("ChannelUserevent", timeout=5))
        await wait_until(lambda: client.subscriptions == 1)  # once() subscribes as it starts
        await client.events.user_event("just-once")
        event = await waiter
        assert event_type(event) == "ChannelUserevent" and event.eventname == "just-once"
        assert client.subscriptions == 0  # the subscription went with it


async def test_child_clients_share_the_connection(client: AriClient) -> None:
    async with asyncio.timeout(10):
        child = client.child()
        assert (child.node, child.application, child.hub) == (
            client.node,
            client.application,
            client.hub,
        )
        parent_sub = await client.subscribe("ChannelUserevent")
        child_sub = await child.subscribe("ChannelUserevent")
        grandchild = child.child()
        grandchild_sub = await grandchild.subscribe("ChannelUserevent")
        assert client.subscriptions == 3

        await child.events.user_event("from-child")  # requests go over the shared connection
        for sub in (parent_sub, child_sub, grandchild_sub):
            assert (await sub.next(timeout=5)).eventname == "from-child"

        await child.close()
        assert child.closed and grandchild.closed and not client.closed
        assert child_sub.closed and grandchild_sub.closed and not parent_sub.closed
        assert client.subscriptions == 1
        with pytest.raises(ClientClosedError):
            await child.events.user_event("too-late")
        with pytest.raises(ClientClosedError):
            await child.subscribe("ChannelUserevent")
        with pytest.raises(ClientClosedError):
            await child_sub.next(timeout=1)

        await client.events.user_event("parent-still-works")
        assert (await parent_sub.next(timeout=5)).eventname == "parent-still-works"
        assert (await client.asterisk.ping()).ping == "pong"
        parent_sub.close()


async def test_closing_the_client_closes_its_subscriptions(
    client: AriClient, connect_client
) -> None:
    async with asyncio.timeout(10):
        other = await connect_client(f"{client.application}-closing")
        sub = await other.subscribe()
        received = []
        got_one = asyncio.Event()

        async def consume() -> None:
            async for event in sub:  # ends cleanly when the client closes
                received.append(event)
                got_one.set()

        task = asyncio.create_task(consume())
        await other.events.user_event("before-close")
        await asyncio.wait_for(got_one.wait(), 5)
        await other.close()
        await asyncio.wait_for(task, 5)
        assert [e.eventname for e in received] == ["before-close"]
        assert sub.closed and other.closed


async def test_several_applications_on_one_connection(connect_client, app_name: str) -> None:
    async with asyncio.timeout(15):
        apps = [f"{app_name}-a", f"{app_name}-b"]
        client = await connect_client(apps)
        assert client.application == apps[0] and client.application_names == tuple(apps)
        registered = {a.id for a in await client.applications.list()}
        assert set(apps) <= registered
        async with client.subscribe("ChannelUserevent", "StasisStart") as events:
            await client.events.user_event("to-a")  # the first application by default
            await client.events.user_event("to-b", application=apps[1])
            first, second = await events.next(timeout=5), await events.next(timeout=5)
            assert {
                (first.application, first.eventname),
                (second.application, second.eventname),
            } == {
                (apps[0], "to-a"),
                (apps[1], "to-b"),
            }
            channel = await client.channels.originate("Local/wait@default", app=apps[1])
            start = await events.next(timeout=5)
            assert (start.application, start.channel.id) == (apps[1], channel.id)
            await channel.hangup()


async def test_subscribe_all_sees_channels_of_other_applications(
    client: AriClient, connect_client, stasis_channel, expect
) -> None:
    async with asyncio.timeout(15):
        watcher = await connect_client(f"{client.application}-all", subscribe_all=True)
        bystander = await connect_client(f"{client.application}-none")
        async with (
            watcher.subscribe("ChannelDestroyed") as seen_all,
            bystander.subscribe("ChannelDestroyed") as seen_own,
        ):
            channel = await stasis_channel()  # in `client`'s application, not theirs
            await channel.hangup()
            destroyed = await seen_all.next(timeout=5)
            while destroyed.channel.id != channel.id:
                destroyed = await seen_all.next(timeout=5)
            assert destroyed.application == watcher.application
            with pytest.raises(TimeoutError):  # without subscribe_all: not its channel
                await expect(seen_own, where=lambda e: e.channel.id == channel.id, timeout=0.5)
