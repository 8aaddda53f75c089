"""How the reader tells REST answers from events (`WebSocketRest.offer`), frame by frame: only a
`RESTResponse` object is taken; an event that merely mentions one is an event; an answer nobody
waits for is dropped and counted; `ApplicationReplaced` moves requests to HTTP."""

from __future__ import annotations

import json

from ari_proxy.ari import HttpTransport, WebSocketRest


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
