"""`str(AriError)` shows Asterisk's message; the bus keeps the Go wording, byte for byte."""

from __future__ import annotations

import pytest

from ari_proxy import AriError, ConflictError, InvalidRequestError, NotFoundError
from ari_proxy._exceptions import error_for_status
from ari_proxy.protocol import (
    Response,
    decode_response,
    encode_response,
    error_reply,
    reply_error,
)

GO_404 = "Non-2XX response: 404 Not Found"


def test_str_adds_asterisks_message_after_the_text() -> None:
    error = error_for_status(404, GO_404, reason="Not Found", message="Channel not found")
    assert isinstance(error, NotFoundError)
    assert str(error) == "Non-2XX response: 404 Not Found: Channel not found"
    assert error.text == GO_404
    assert error.args == (GO_404,)


@pytest.mark.parametrize(
    ("text", "message", "shown"),
    [
        (GO_404, "", GO_404),  # nothing to add
        (
            "404 Not Found: Channel not found",
            "Channel not found",
            "404 Not Found: Channel not found",
        ),
        ("wrong key type", "", "wrong key type"),
    ],
)
def test_str_never_repeats_or_invents_a_message(text: str, message: str, shown: str) -> None:
    assert str(AriError(text, status=404, message=message)) == shown


def test_the_wire_carries_the_text_and_the_message_apart() -> None:
    error = ConflictError(
        "Non-2XX response: 409 Conflict",
        status=409,
        reason="Conflict",
        message="Channel not in Stasis application",
    )
    reply = error_reply(error)
    assert reply.error == "Non-2XX response: 409 Conflict"  # what Go clients read, unchanged
    assert reply.message == "Channel not in Stasis application"
    wire = encode_response(reply)
    assert b'"error":"Non-2XX response: 409 Conflict"' in wire
    # The proxy client raises what the native client raised, and prints the same.
    back = reply_error(decode_response(wire))
    assert type(back) is ConflictError
    assert (
        str(back)
        == str(error)
        == ("Non-2XX response: 409 Conflict: Channel not in Stasis application")
    )


def test_a_go_servers_reply_has_no_message_to_add() -> None:
    back = reply_error(Response(error=GO_404))
    assert isinstance(back, NotFoundError)
    assert str(back) == GO_404


def test_invalid_requests_keep_their_literal_text() -> None:
    refused = InvalidRequestError("channel key not supplied")
    assert error_reply(refused).error == "channel key not supplied"
    assert str(refused) == "channel key not supplied"
