"""`client.on(...)` handlers and `client.handle_of(...)`: order, failures, backlog and end of a
handler (events pushed through a fake ARI's real WebSocket), and a real call handled with them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

import ari_proxy.ari as ari
from ari_proxy import (
    BridgeHandle,
    ChannelHandle,
    ClientClosedError,
    EventHandler,
    Key,
    LiveRecordingHandle,
    Overflow,
    SubscriptionOverflowError,
)
from ari_proxy.api import EndpointHandle
from ari_proxy.ari import AriClient
from ari_proxy.spec.models import (
    Bridge,
    Channel,
    ChannelDestroyed,
    ChannelUserevent,
    Endpoint,
    LiveRecording,
    Message,
    StasisStart,
)
from ari_proxy.testing._fake_ari import FakeAri

APP = "handlers-app"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def fake_client(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with ari.connect(fake.http_url, fake.username, fake.password, APP) as c:
        await fake.wait_websocket()
        yield c


async def push(fake: FakeAri, *numbers: int) -> None:
    for n in numbers:
        event = {"type": "ChannelUserevent", "application": APP, "eventname": str(n)}
        assert await fake.push(event) == 1


class Seen:
    """What a handler received, and a way to wait for the n-th."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._changed = asyncio.Event()

    def add(self, event: Message) -> None:
        assert isinstance(event, ChannelUserevent)
        self.names.append(event.eventname)
        self._changed.set()

    async def until(self, count: int) -> list[str]:
        while len(self.names) < count:
            self._changed.clear()
            await self._changed.wait()
        return self.names


async def test_each_handler_gets_its_events_in_order_and_handlers_run_side_by_side(
    fake: FakeAri, fake_client: AriClient
) -> None:
    gate = asyncio.Event()
    slow_seen, fast_seen = Seen(), Seen()

    async def slow(event: Message) -> None:
        await gate.wait()  # holds its first event until the fast handler saw them all
        slow_seen.add(event)

    async with asyncio.timeout(10):
        slow_handler = await fake_client.on("ChannelUserevent", slow)
        fast_handler = await fake_client.on("ChannelUserevent", fast_seen.add)  # a plain function
        await push(fake, *range(50))
        assert await fast_seen.until(50) == [str(n) for n in range(50)]
        assert slow_seen.names == []
        gate.set()
        assert await slow_seen.until(50) == [str(n) for n in range(50)]
    assert (slow_handler.handled, fast_handler.handled) == (50, 50)
    assert fake_client.handlers == {slow_handler, fast_handler}


async def test_a_failing_handler_is_logged_counted_and_gets_the_next_events(
    fake: FakeAri, fake_client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Seen()

    async def picky(event: Message) -> None:
        seen.add(event)
        assert isinstance(event, ChannelUserevent)
        if int(event.eventname) % 2:
            raise RuntimeError(f"odd {event.eventname}")

    caplog.set_level(logging.ERROR, logger="ari_proxy.api._handlers")
    async with asyncio.timeout(10):
        handler = await fake_client.on(["ChannelUserevent"], picky)
        await push(fake, *range(10))
        await seen.until(10)
        other = Seen()  # the reader and the other handlers carry on
        await fake_client.on("ChannelUserevent", other.add)
        await push(fake, 10)
        await other.until(1)
        await seen.until(11)
    assert (handler.handled, handler.failed) == (6, 5)
    failures = [r for r in caplog.records if "failed on ChannelUserevent" in r.getMessage()]
    assert len(failures) == 5
    assert all(r.exc_info and "odd" in str(r.exc_info[1]) for r in failures)
    assert not handler.closed and handler.error is None


async def test_a_handler_that_falls_behind_drops_by_its_policy(
    fake: FakeAri, fake_client: AriClient
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()
    seen = Seen()

    async def stuck(event: Message) -> None:
        entered.set()
        await gate.wait()
        seen.add(event)

    async with asyncio.timeout(10):
        handler = await fake_client.on("ChannelUserevent", stuck, maxsize=5)
        tail = Seen()  # a second handler, to know when every event has been fanned out
        await fake_client.on("ChannelUserevent", tail.add)
        await push(fake, 0)
        await entered.wait()  # event 0 is in hand: the queue holds the next five
        await push(fake, *range(1, 11))
        await tail.until(11)
        assert handler.dropped == 5  # 6..10 arrived while 1..5 waited
        assert fake_client.hub.dropped == 5
        gate.set()
        assert await seen.until(6) == [str(n) for n in range(6)]


async def test_overflow_close_stops_the_handler_with_the_error(
    fake: FakeAri, fake_client: AriClient
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(event: Message) -> None:
        entered.set()
        await gate.wait()

    async with asyncio.timeout(10):
        handler = await fake_client.on(
            "ChannelUserevent", stuck, maxsize=2, overflow=Overflow.CLOSE
        )
        await push(fake, 0)
        await entered.wait()
        await push(fake, 1, 2, 3)
        gate.set()
        await handler.wait_closed()
    assert isinstance(handler.error, SubscriptionOverflowError)
    assert handler.closed


async def test_decorated_handlers_unregister_and_end_with_their_client(
    fake: FakeAri, fake_client: AriClient
) -> None:
    seen = Seen()

    @fake_client.on("ChannelUserevent")
    async def first(event: Message) -> None:
        seen.add(event)

    assert isinstance(first, EventHandler)
    async with asyncio.timeout(10):
        await first
        await push(fake, 1)
        await seen.until(1)
        await first.aclose()
        assert first.closed and fake_client.handlers == frozenset()
        later = Seen()
        await fake_client.on("ChannelUserevent", later.add)
        await push(fake, 2)
        await later.until(1)
        assert seen.names == ["1"]  # nothing after close

        child = fake_client.child()
        on_child = await child.on("ChannelUserevent", Seen().add)
        subscriptions = fake_client.hub.subscriptions
        await child.close()
        assert on_child.closed
        assert fake_client.hub.subscriptions == subscriptions - 1


async def test_a_handles_handler_gets_only_its_entitys_events(
    fake: FakeAri, fake_client: AriClient
) -> None:
    mine, everyone = Seen(), Seen()
    channel = fake_client.channels.handle("c1")
    async with asyncio.timeout(10):
        await channel.on("ChannelUserevent", mine.add)
        await fake_client.on("ChannelUserevent", everyone.add)
        for n, owner in enumerate(["c1", "c2", "c1", "c3", "c1"]):
            event = {
                "type": "ChannelUserevent",
                "application": APP,
                "eventname": str(n),
                "channel": {"id": owner},
            }
            assert await fake.push(event) == 1
        await everyone.until(5)
        assert await mine.until(3) == ["0", "2", "4"]


async def test_a_handler_closed_before_it_was_live(fake: FakeAri, fake_client: AriClient) -> None:
    seen = Seen()
    handler = fake_client.on("ChannelUserevent", seen.add)
    handler.close()
    async with asyncio.timeout(10):
        with pytest.raises(ClientClosedError):
            await handler
        await handler.wait_closed()
        assert handler.closed and handler.error is None
        witnessed = Seen()  # a live handler: once it has the event, every handler had it
        await fake_client.on("ChannelUserevent", witnessed.add)
        await push(fake, 1)
        await witnessed.until(1)
    assert seen.names == []


async def test_a_handler_cannot_be_added_to_a_closed_client(fake_client: AriClient) -> None:
    child = fake_client.child()
    await child.close()
    with pytest.raises(ClientClosedError):
        child.on("StasisStart", print)


# --- handle_of -----------------------------------------------------------------------------------


async def test_handle_of_each_model(fake_client: AriClient) -> None:
    node, app = fake_client.node, APP
    channel = fake_client.handle_of(Channel(id="c1"))
    assert isinstance(channel, ChannelHandle)
    assert channel.key == Key("channel", "c1", node, "", app)
    assert isinstance(fake_client.handle_of(Bridge(id="b1")), BridgeHandle)
    recording = fake_client.handle_of(LiveRecording(name="r1"))
    assert isinstance(recording, LiveRecordingHandle)
    assert recording.key.kind == "liverecording" and recording.id == "r1"
    endpoint = fake_client.handle_of(Endpoint(technology="PJSIP", resource="alice"))
    assert isinstance(endpoint, EndpointHandle) and endpoint.id == "PJSIP/alice"


async def test_handle_of_takes_node_and_application_from_the_event(
    fake_client: AriClient,
) -> None:
    event = StasisStart(
        channel=Channel(id="c2"), application="other-app", asterisk_id="aa:bb:cc:dd:ee:ff"
    )
    scoped = fake_client.scoped("handlers-app.dl1")
    handle = scoped.handle_of(event.channel, event)
    assert handle.key == Key("channel", "c2", "aa:bb:cc:dd:ee:ff", "handlers-app.dl1", "other-app")


async def test_handle_of_refuses_what_has_no_handle(fake_client: AriClient) -> None:
    with pytest.raises(TypeError, match="no handle for a str"):
        fake_client.handle_of("c1")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="has no ID"):
        fake_client.handle_of(Channel())
    with pytest.raises(ValueError, match="has no ID"):
        fake_client.handle_of(Endpoint())


# --- a real call ---------------------------------------------------------------------------------


async def test_a_real_stasis_start_handled_through_its_channels_handle(client: AriClient) -> None:
    destroyed: asyncio.Future[ChannelDestroyed] = asyncio.get_running_loop().create_future()
    states: list[str] = []

    @client.on("StasisStart")
    async def answer(event: StasisStart) -> None:
        channel = client.handle_of(event.channel, event)
        assert channel.node == event.asterisk_id == client.node
        await channel.answer()
        states.append((await channel.data()).state)
        async with channel.subscribe("ChannelDestroyed") as ends:
            await channel.hangup()
            gone = await ends.next(timeout=5)
        assert isinstance(gone, ChannelDestroyed)
        destroyed.set_result(gone)

    async with asyncio.timeout(15):
        await answer
        caller = await client.channels.originate("Local/wait@default")
        gone = await destroyed
    assert gone.channel.id == caller.id
    assert states == ["Up"]
    assert (answer.handled, answer.failed) == (1, 0)
