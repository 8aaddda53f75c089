"""How the reader tells REST answers from events (`WebSocketRest.offer`), frame by frame: only a
`RESTResponse` object is taken; an event that merely mentions one is an event; an answer nobody
waits for is dropped and counted; `ApplicationReplaced` moves requests to HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json

from ari_proxy.ari import HttpTransport, WebSocketRest
from ari_proxy.spec import OPERATIONS
from ari_proxy.testing import wait_until


def _rest() -> WebSocketRest:
    return WebSocketRest(HttpTransport("http://127.0.0.1:1/ari", "u", "p"))


def test_an_event_that_mentions_an_answer_is_an_event() -> None:
    rest = _rest()
    varset = {
        "type": "ChannelVarset",
        "variable": "X",
        "value": '{"type":"RESTResponse","request_id":"1"}',
    }
    assert rest.offer(json.dumps(varset)) is False
    assert rest.offer(json.dumps(varset).encode()) is False
    keyed = {"type": "ChannelUserevent", "userevent": {"RESTResponse": "x"}}  # decoded, then
    assert '"RESTResponse"' in json.dumps(keyed)  # told apart by its type
    assert rest.offer(json.dumps(keyed)) is False
    assert rest.offer('"RESTResponse" but not JSON') is False
    assert rest.late == 0


def test_an_answer_nobody_waits_for_is_dropped_and_counted() -> None:
    rest = _rest()
    answer = {"type": "RESTResponse", "request_id": "41", "status_code": 200, "message_body": "{}"}
    assert rest.offer(json.dumps(answer)) is True
    assert rest.offer(json.dumps(answer).encode()) is True
    assert rest.late == 2


def test_application_replaced_moves_requests_to_http_until_the_next_connection() -> None:
    rest = _rest()
    replaced = {"type": "ApplicationReplaced", "application": "app"}
    mention = {"type": "ChannelUserevent", "userevent": {"ApplicationReplaced": "x"}}
    seen = [rest._replaced]
    assert rest.offer(json.dumps(replaced)) is False  # still an event for the application
    seen.append(rest._replaced)
    rest.attach(object())  # type: ignore[arg-type]  # a new connection: nothing is sent here
    seen.append(rest._replaced)
    assert rest.offer(json.dumps(mention)) is False
    seen.append(rest._replaced)
    assert seen == [False, True, False, False]


class _Socket:
    """Records the frames a `WebSocketRest` sends."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def send_str(self, data: str, compress: int | None = None) -> None:
        self.ids.append(json.loads(data)["request_id"])


def _answer(request_id: str) -> str:
    return json.dumps(
        {"type": "RESTResponse", "request_id": request_id, "status_code": 200, "message_body": ""}
    )


async def test_a_full_table_hands_each_freed_slot_to_the_next_caller_still_waiting() -> None:
    rest = WebSocketRest(HttpTransport("http://127.0.0.1:1/ari", "u", "p"), max_pending=1)
    socket = _Socket()
    rest.attach(socket)
    ping = OPERATIONS["asterisk.ping"]
    first = asyncio.ensure_future(rest.request(ping, timeout=10))
    await wait_until(lambda: len(socket.ids) == 1)
    gives_up, second, third = (
        asyncio.ensure_future(rest.request(ping, timeout=10)) for _ in range(3)
    )
    await wait_until(lambda: rest.queued == 3)
    gives_up.cancel()  # never sent, and its place in the queue is skipped
    assert rest.offer(_answer(socket.ids[0]))
    assert (await first).status == 200
    await wait_until(lambda: len(socket.ids) == 2)
    # `second` holds the slot now. As it ends it hands the slot to `third`, which gives up
    # before it runs (the cancel is queued right behind `second`'s wake-up): the slot is
    # passed on, so a later caller is not stuck behind a slot nobody holds.
    assert rest.offer(_answer(socket.ids[1]))
    asyncio.get_running_loop().call_soon(third.cancel)
    assert (await second).status == 200
    with contextlib.suppress(asyncio.CancelledError):
        await third
    assert gives_up.cancelled()
    assert len(socket.ids) == 2 and rest.queued == 0
    last = asyncio.ensure_future(rest.request(ping, timeout=10))
    await wait_until(lambda: len(socket.ids) == 3)
    assert rest.offer(_answer(socket.ids[2]))
    assert (await last).status == 200
    await rest.close()
