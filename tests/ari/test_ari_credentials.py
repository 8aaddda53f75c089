"""A wrong ARI password is named as such, with the attempt number, and retried (Asterisk may be
mid-reload): against the sandbox Asterisk, on REST, on the events WebSocket, through the native
client and through the server."""

from __future__ import annotations

import logging

import pytest

import ari_proxy
from ari_proxy.ari import HttpTransport
from ari_proxy.server import Server
from ari_proxy.spec import OPERATIONS
from ari_proxy.testing import Instance, proxy_config

WRONG = "not-the-password"


async def test_rest_says_the_credentials_were_rejected(asterisk: Instance) -> None:
    http = HttpTransport(asterisk.http_url, asterisk.username, WRONG, timeout=5)
    try:
        with pytest.raises(ari_proxy.AriError) as info:
            await http.request(OPERATIONS["asterisk.getInfo"])
    finally:
        await http.close()
    assert info.value.status == 401
    assert str(info.value) == (
        f"ARI rejected the credentials (401): check the ARI user ({asterisk.username!r}) "
        "and password"
    )
    assert WRONG not in str(info.value)


async def test_the_native_client_names_the_401(asterisk: Instance, app_name: str) -> None:
    with pytest.raises(ari_proxy.ConnectError) as info:
        await ari_proxy.connect(
            asterisk.http_url,
            application=app_name,
            username=asterisk.username,
            password=WRONG,
            connect_timeout=1.0,
        )
    text = str(info.value)
    assert "ARI rejected the credentials (401)" in text, text
    assert "Invalid response status" not in text and WRONG not in text


async def test_the_server_logs_its_attempts_and_keeps_trying(
    asterisk: Instance, nats_url: str, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.ari")
    server = Server(proxy_config(asterisk, nats_url, app_name, ari_password=WRONG))
    server.stream.backoff.initial = server.stream.backoff.maximum = 0.05
    with pytest.raises(ari_proxy.ConnectError):
        await server.start(ari_timeout=1.0)
    await server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "ari_proxy.ari._websocket"]
    assert len(lines) >= 3, lines  # retried, not given up after the first 401
    for attempt, line in zip((1, 2, 4), lines, strict=False):  # docs/operations.md
        assert line.startswith(
            f"ARI events WebSocket: ARI rejected the credentials (401): check the ARI user "
            f"({asterisk.username!r}) and password at {asterisk.ws_url} (attempt {attempt}); "
            "retrying in "
        ), line
    assert all(WRONG not in line for line in lines)
