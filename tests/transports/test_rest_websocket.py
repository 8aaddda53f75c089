"""REST over the events WebSocket (`transport="websocket"`), against the real Asterisk 22.

What travels on the socket, what Asterisk's errors become, that path segments are encoded as
over HTTP, that binary downloads still go over HTTP, and what happens to a request when the
link goes silent, is cut, or its caller gives up: a deadline, a bounded pending table, a
`ConnectionDownError` for what was in flight, and nothing sent after its caller gave up.
A `TcpProxy` between the client and Asterisk holds or cuts the link.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import ari_proxy.ari as ari
from ari_proxy._exceptions import AriError, ConnectionDownError, NotFoundError, RequestTimeout
from ari_proxy.api import event_type
from ari_proxy.ari import AriClient, EventStream, HttpTransport, WebSocketRest
from ari_proxy.ari._websocket_rest import MAX_FRAME
from ari_proxy.spec import OPERATIONS
from ari_proxy.testing import Instance, wait_until
from ari_proxy.testing._fake_ari import FakeAri
from ari_proxy.testing._tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

PING = OPERATIONS["asterisk.ping"]


@pytest.fixture
async def ws_client(asterisk: Instance, app_name: str) -> AsyncIterator[AriClient]:
    async with ari.connect(
        asterisk.http_url, asterisk.username, asterisk.password, app_name, transport="websocket"
    ) as client:
        yield client


@pytest.fixture
async def link(asterisk: Instance) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of Asterisk's HTTP port."""
    async with TcpProxy("127.0.0.1", asterisk.spec.http_port) as proxy:
        yield proxy


def _rest(client: AriClient) -> WebSocketRest:
    rest = client._backend.websocket_rest
    assert rest is not None
    return rest


async def test_a_call_runs_over_the_websocket(ws_client: AriClient) -> None:
    rest = _rest(ws_client)
    before = rest.sent
    staged = await ws_client.channels.stage_originate("Local/wait@default")
    async with staged.subscribe("StasisStart", "StasisEnd") as events:
        channel = await staged.execute()
        assert event_type(await events.next(timeout=5)) == "StasisStart"
        await channel.answer()
        await channel.set_variable("GREETING", "hello world/?#")
        assert await channel.get_variable("GREETING") == "hello world/?#"
        assert (await channel.data()).state == "Up"
        await channel.hangup()
        assert event_type(await events.next(timeout=5)) == "StasisEnd"
    assert rest.sent - before == 6  # originate, answer, set, get, data, hangup
    assert rest.pending == 0


async def test_a_request_too_large_for_a_frame_goes_over_http(ws_client: AriClient) -> None:
    # Asterisk closes the socket, and with it the events, on a frame longer than it reads; over
    # HTTP the same request is refused on its own (Asterisk's HTTP limits are lower still).
    rest = _rest(ws_client)
    connects, sent = ws_client._backend.stream.connects, rest.sent
    with pytest.raises(AriError) as refused:
        await ws_client.events.user_event("big", variables={"v": "a" * MAX_FRAME})
    assert refused.value.status == 413
    assert (rest.too_large, rest.sent) == (1, sent)
    async with ws_client.subscribe("ChannelUserevent") as events:
        await ws_client.events.user_event("small", variables={"v": "b"})  # the same socket
        assert (await events.next(timeout=5)).userevent["v"] == "b"  # type: ignore[attr-defined]
    assert rest.sent == sent + 1
    assert ws_client._backend.stream.connects == connects


async def test_errors_carry_asterisk_s_status_and_message(ws_client: AriClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        await ws_client.channels.handle("no-such-channel").data()
    assert missing.value.status == 404
    assert missing.value.message == "Channel not found"


async def test_an_event_filter_lets_the_answers_through(ws_client: AriClient) -> None:
    """The answers are events of the application: an allow-list set over the socket keeps
    them coming, and the filter reads back as it was asked."""
    app = ws_client.applications.handle()
    data = await app.set_event_filter(allowed=["ChannelUserevent"], disallowed=["RESTResponse"])
    assert (data.events_allowed, data.events_disallowed) == ([{"type": "ChannelUserevent"}], [])
    assert (await ws_client.asterisk.ping()).ping == "pong"
    again = await app.data()
    assert (again.events_allowed, again.events_disallowed) == ([{"type": "ChannelUserevent"}], [])
    await app.set_event_filter()


async def test_requests_stay_answered_when_another_client_takes_the_application(
    ws_client: AriClient, asterisk: Instance, app_name: str
) -> None:
    """Asterisk leaves requests on a socket whose application was taken over unanswered once
    the new socket closes: they go over HTTP from the `ApplicationReplaced` on."""
    rest = _rest(ws_client)
    async with ws_client.subscribe("ApplicationReplaced") as replaced:
        async with ari.connect(
            asterisk.http_url, asterisk.username, asterisk.password, app_name,
            transport="websocket",
        ):  # fmt: skip
            await replaced.next(timeout=5)
    sent = rest.sent
    async with asyncio.timeout(3):  # over the socket it would wait for its whole deadline
        assert (await ws_client.asterisk.ping()).ping == "pong"
    assert rest.sent == sent  # over HTTP


async def test_path_segments_are_encoded_as_over_http(
    ws_client: AriClient, asterisk: Instance, app_name: str
) -> None:
    """An ID full of URL syntax names one channel, found the same way over both transports."""
    hostile = "a/b c?d=e#f%2F..;x"
    channel = await ws_client.channels.originate("Local/wait@default", channel_id=hostile)
    try:
        assert channel.id == hostile
        assert (await ws_client.channels.handle(hostile).data()).id == hostile
        async with ari.connect(
            asterisk.http_url, asterisk.username, asterisk.password, app_name + "-http"
        ) as over_http:
            assert (await over_http.channels.handle(hostile).data()).id == hostile
    finally:
        await ws_client.channels.handle(hostile).hangup()


async def test_a_recording_downloads_over_http(ws_client: AriClient, tmp_path: Path) -> None:
    """Asterisk answers 406 to a binary body on the socket: the file comes over HTTP."""
    staged = await ws_client.channels.stage_originate("Local/playback@default")
    async with staged.subscribe("StasisStart") as events:
        channel = await staged.execute()
        await events.next(timeout=5)
    try:
        recording = await channel.stage_record(format="wav", max_duration=1)
        async with recording.subscribe("RecordingFinished") as finished:
            await recording.execute()
            await finished.next(timeout=10)
        stored = recording.handle.stored()
        try:
            body = await stored.read()
            assert body[:4] == b"RIFF" and len(body) > 1000
        finally:
            await stored.delete()
    finally:
        await channel.hangup()


async def test_a_request_in_flight_when_the_socket_goes_fails_and_the_next_one_works(
    asterisk: Instance, app_name: str, link: TcpProxy
) -> None:
    async with ari.connect(
        f"http://127.0.0.1:{link.port}/ari",
        asterisk.username,
        asterisk.password,
        app_name,
        transport="websocket",
    ) as client:
        rest = _rest(client)
        link.hold()
        asked = asyncio.ensure_future(client.asterisk.ping())
        await wait_until(lambda: rest.pending == 1)
        await link.cut()
        with pytest.raises(ConnectionDownError, match="in flight"):
            await asked
        assert rest.pending == 0
        with pytest.raises(ConnectionDownError, match="is down"):
            await client.asterisk.ping()  # not sent: there is no socket
        link.release()
        await link.restore()
        await client.wait_connected(15)
        assert (await client.asterisk.ping()).ping == "pong"


async def test_deadlines_a_bounded_table_and_nothing_sent_after_the_caller_gave_up(
    asterisk: Instance, app_name: str, link: TcpProxy
) -> None:
    base = f"http://127.0.0.1:{link.port}/ari"
    http = HttpTransport(base, asterisk.username, asterisk.password)
    rest = WebSocketRest(http, max_pending=1)
    connected = asyncio.Event()

    async def on_connected(lost_at: float | None) -> None:
        connected.set()

    stream = EventStream(
        http,
        base.replace("http", "ws", 1) + "/events",
        [app_name],
        on_frame=lambda data: None,
        on_connected=on_connected,
        rest=rest,
    )
    await stream.start()
    try:
        link.hold()
        first = asyncio.ensure_future(rest.request(PING, timeout=10))
        await wait_until(lambda: rest.pending == 1)
        # The table is full: the second waits for a slot, gives up, and is never sent.
        with pytest.raises(RequestTimeout):
            await rest.request(PING, timeout=0.2)
        assert rest.sent == 1
        # A caller that cancels leaves nothing behind either.
        waiting = asyncio.ensure_future(rest.request(PING, timeout=10))
        await wait_until(lambda: rest.queued == 1)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert rest.sent == 1
        link.release()
        assert (await first).status == 200
        # A deadline on a silent link; its late answer is dropped and counted.
        link.hold()
        with pytest.raises(RequestTimeout):
            await rest.request(PING, timeout=0.3)
        assert rest.pending == 0
        link.release()
        await wait_until(lambda: rest.late == 1)
        assert (await rest.request(PING)).status == 200
    finally:
        await stream.close()
        await rest.close()
        await http.close()


async def test_auto_chooses_by_the_version_asterisk_reports(
    asterisk: Instance, app_name: str
) -> None:
    """The default: the WebSocket on this Asterisk 22.10, HTTP on the fake ARI (22.0.0)."""
    async with ari.connect(
        asterisk.http_url, asterisk.username, asterisk.password, app_name
    ) as client:
        rest = _rest(client)
        assert rest.enabled
        before = rest.sent
        assert (await client.asterisk.ping()).ping == "pong"
        assert rest.sent == before + 1
    async with FakeAri() as fake:
        async with ari.connect(fake.http_url, fake.username, fake.password, app_name) as old:
            rest = _rest(old)
            assert not rest.enabled
            await old.asterisk.info()
            assert rest.sent == 0
            infos = [r for r in fake.requests if r.path == "/asterisk/info"]
            assert len(infos) >= 3  # connect, the new socket, and this one: all over HTTP


async def test_an_unknown_transport_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'http', 'websocket'"):
        ari.connect("http://127.0.0.1:1/ari", "u", "p", "app", transport="carrier-pigeon")
