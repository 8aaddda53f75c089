"""What a real Asterisk 22 never does, done by the fake ARI server: event types from a later
release, fields of the wrong type, malformed frames, chosen error statuses and stalled requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import ari_proxy.ari as ari
from ari_proxy._exceptions import (
    AriError,
    BadRequestError,
    ConnectError,
    InternalServerError,
    RequestTimeout,
    ServiceUnavailableError,
)
from ari_proxy.api import UnknownEvent, event_type, raw_event
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import ChannelUserevent
from ari_proxy.testing._fake_ari import FakeAri

APP = "fake-app"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def fake_client(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with ari.connect(fake.http_url, fake.username, fake.password, APP, timeout=2) as c:
        await fake.wait_websocket()
        yield c


def event(kind: str, fake: FakeAri, **fields: object) -> dict[str, object]:
    return {"type": kind, "application": APP, "asterisk_id": fake.entity_id, **fields}


async def test_an_unknown_event_type_is_delivered(fake: FakeAri, fake_client: AriClient) -> None:
    async with asyncio.timeout(10):
        async with (
            fake_client.subscribe() as everything,
            fake_client.subscribe("FutureEvent2027") as by_type,
        ):
            await fake.push(event("FutureEvent2027", fake, foo=1, nested={"bar": [1, 2]}))
            got = await everything.next(timeout=5)
            assert got is await by_type.next(timeout=5)
        assert isinstance(got, UnknownEvent)
        assert event_type(got) == "FutureEvent2027"
        assert (got.application, got.asterisk_id) == (APP, fake.entity_id)
        assert raw_event(got)["foo"] == 1 and raw_event(got)["nested"] == {"bar": [1, 2]}


async def test_unknown_events_are_routed_to_their_entities(
    fake: FakeAri, fake_client: AriClient
) -> None:
    async with asyncio.timeout(10):
        channel = fake_client.channels.handle("ch-1")
        async with channel.subscribe() as of_channel:
            await fake.push(event("ChannelDidSomethingNew", fake, channel={"id": "ch-2"}))
            await fake.push(event("ChannelDidSomethingNew", fake, channel={"id": "ch-1"}))
            got = await of_channel.next(timeout=5)
            assert raw_event(got)["channel"] == {"id": "ch-1"}
            assert of_channel.qsize() == 0


async def test_a_known_type_with_a_wrong_field_arrives_as_unknown(
    fake: FakeAri, fake_client: AriClient
) -> None:
    async with asyncio.timeout(10):
        async with fake_client.subscribe("StasisStart") as events:
            await fake.push(event("StasisStart", fake, channel="not-an-object", args=[]))
            got = await events.next(timeout=5)
        assert isinstance(got, UnknownEvent)
        assert event_type(got) == "StasisStart"
        assert raw_event(got)["channel"] == "not-an-object"


async def test_malformed_frames_are_counted_and_the_reader_goes_on(
    fake: FakeAri, fake_client: AriClient
) -> None:
    async with asyncio.timeout(10):
        backend = fake_client._backend
        assert backend.bad_frames == 0
        async with fake_client.subscribe() as events:
            for frame in ("{not json", "[1, 2]", '{"no_type": 1}', '{"type": 7}', ""):
                await fake.push(frame)
            await fake.push(event("ChannelUserevent", fake, eventname="still-reading"))
            got = await events.next(timeout=5)
            assert isinstance(got, ChannelUserevent) and got.eventname == "still-reading"
            assert backend.bad_frames == 5
            assert events.qsize() == 0  # nothing else was delivered

            # A binary frame with a good event is an event too.
            await fake.push(b'{"type":"ChannelUserevent","eventname":"binary","application":"x"}')
            assert (await events.next(timeout=5)).eventname == "binary"
        assert backend.stream.frames == 7


async def test_error_statuses_keep_status_reason_and_message(
    fake: FakeAri, fake_client: AriClient
) -> None:
    async with asyncio.timeout(10):
        cases = [
            (503, {"message": "try later"}, ServiceUnavailableError, "try later"),
            (500, b"<html>boom</html>", InternalServerError, "<html>boom</html>"),
            (400, {"message": "no", "extra": 1}, BadRequestError, "no"),
            (418, {"message": "teapot"}, AriError, "teapot"),
            (500, None, InternalServerError, ""),
        ]
        for status, body, cls, message in cases:
            fake.answer("GET", "/asterisk/ping", status, body)
            with pytest.raises(cls) as refused:
                await fake_client.asterisk.ping()
            assert type(refused.value) is cls
            assert (refused.value.status, refused.value.message) == (status, message)
        fake.reset()
        assert (await fake_client.asterisk.ping()).ping == "pong"


async def test_a_stalled_request_times_out(fake: FakeAri, fake_client: AriClient) -> None:
    async with asyncio.timeout(10):
        fake.stall("GET", "/asterisk/ping")
        with pytest.raises(RequestTimeout) as stalled:
            await fake_client.asterisk.ping()  # the client's default: 2 s here
        assert isinstance(stalled.value, TimeoutError)
        with pytest.raises(RequestTimeout):
            await fake_client.request("AsteriskPing", fake_client.key("", ""), timeout=0.2)
        # The connection is still usable for other requests.
        await fake_client.mailboxes.list()


async def test_bad_credentials_or_no_server_fail_to_connect(fake: FakeAri) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(ConnectError):
            await ari.connect(fake.http_url, fake.username, "wrong", APP, connect_timeout=2)
        assert fake.seen("GET", "/asterisk/info")  # it asked, and was refused
        closed = FakeAri()
        await closed.start()
        url = closed.http_url
        await closed.close()
        with pytest.raises(ConnectError):
            await ari.connect(url, "u", "p", APP, connect_timeout=1)


async def test_requests_refused_client_side_send_nothing(
    fake: FakeAri, fake_client: AriClient
) -> None:
    async with asyncio.timeout(10):
        before = len(fake.requests)
        for operation in (
            fake_client.channels.handle("").data,
            fake_client.channels.handle("..").data,
            fake_client.channels.handle(".").hangup,
            lambda: fake_client.endpoints.list(""),
            lambda: fake_client.asterisk.config.get("a", "b", ".."),
        ):
            with pytest.raises((ValueError, BadRequestError)):
                await operation()
        assert len(fake.requests) == before
