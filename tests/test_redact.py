"""Secrets out of messages, and only secrets: `scrub` hides a secret where it stands as one
(URL user info, credential fields, a known secret as a value) and leaves every other letter of
the message alone, however short or common the secret."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ari_proxy._redact import redact_url, scrub, url_secrets
from ari_proxy.bus import NatsTransport

# Short and common secrets: replacing every substring garbles messages with these.
WEAK = ["b", "t", "app", "password", "a", "it", "ari", "1"]

# Messages the package and its libraries really write, with no secret in them.
PLAIN = [
    "ARI application 'a.b' cannot be a bus subject token: it must not contain '.', '*', '>', "
    "'#', spaces or control characters",
    "no password found (--ari.password, ARI_PASSWORD or ari.password)",
    "no username found (--ari.username, ARI_USERNAME or ari.username)",
    "could not connect to NATS at nats://127.0.0.1:4222 (attempt 3): [Errno 111] Connect call "
    "failed ('127.0.0.1', 4222); retrying in 1.00s",
    "Cannot connect to host 127.0.0.1:1 ssl:default [Connect call failed ('127.0.0.1', 1)]",
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see "
    "the broker logfile.",
    "ARI rejected the credentials (401): check the ARI user and password",
    "node 02:00:00:00:00:01 app t-1234 doesn't answer: it is down",
    "nats: 'Authorization Violation'",
    "messagebus.token applies to NATS only, not to amqp:// URLs",
    "connected to RabbitMQ at amqp://guest:***@127.0.0.1:5672/",
    "",
]


@pytest.mark.parametrize("text", PLAIN)
def test_messages_without_secrets_come_out_unchanged(text: str) -> None:
    assert scrub(text) == text
    assert scrub(text, WEAK) == text


@pytest.mark.parametrize("secret", ["b", "t", "app", "password"])
def test_the_reported_message_is_not_garbled(secret: str) -> None:
    # Was: "ARI application 'a.***' cannot ***e a ***us su***ject token" (password `b`).
    text = "ARI application 'a.b' cannot be a bus subject token"
    assert scrub(text, [secret]) == text


@pytest.mark.parametrize("secret", [*WEAK, "Top-Secret-Pa55word", "p@ss/w0rd", "two words"])
def test_a_secret_standing_as_a_value_is_hidden(secret: str) -> None:
    texts = [
        f"proxy.request_timeout from --proxy.request_timeout: {secret!r} expected seconds",
        f'invalid value "{secret}" for the timeout',
        f"invalid literal for int() with base 10: {secret!r}",
        f"settings: x=0 y={secret} z=2",
        f"  ari: {{password: {secret}\n",
        f"{secret}",
        f"login ari:{secret}@127.0.0.1:5672 refused",
    ]
    for text in texts:
        shown = scrub(text, [secret])
        assert "***" in shown, (text, shown)
        # What is left is the text around the secret, whole.
        assert shown.replace("***", secret, 1) == text, (text, shown)


@pytest.mark.parametrize("secret", ["b", "t", "app", "password", "hunter2"])
def test_secrets_in_urls_are_hidden_whatever_they_are(secret: str) -> None:
    for url, shown in [
        (f"nats://ari:{secret}@127.0.0.1:4222", "nats://ari:***@127.0.0.1:4222"),
        (f"nats://{secret}@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
        (f"amqp://guest:{secret}@rabbit:5672/vh", "amqp://guest:***@rabbit:5672/vh"),
        (f"tls://h:4222?token={secret}&x=1", "tls://h:4222?token=***&x=1"),
    ]:
        text = f"cannot connect to {url}: refused (url '{url}')"
        expected = f"cannot connect to {shown}: refused (url '{shown}')"
        assert scrub(text) == expected  # no known secret needed
        assert scrub(text, [secret]) == expected


def test_credential_fields_are_hidden_whatever_their_value() -> None:
    cases = {
        "ARI_PASSWORD=b ARI_USERNAME=ari": "ARI_PASSWORD=*** ARI_USERNAME=ari",
        "--ari.password=app --ari.username=app": "--ari.password=*** --ari.username=app",
        "auth_token=t; passwd=x, bypass=1": "auth_token=***; passwd=***, bypass=1",
        '{"user": "ari", "password": "b"}': '{"user": "ari", "password": "***"}',
        "{'token': 'abc', 'name': 'n'}": "{'token': '***', 'name': 'n'}",
        'messagebus: {password: "pw"}': 'messagebus: {password: "***"}',
        "Authorization: Basic YXJpOmI=": "Authorization: Basic ***",
        "authorization: Bearer abc.def": "authorization: Bearer ***",
    }
    for text, shown in cases.items():
        assert scrub(text) == shown


def test_the_longest_secret_goes_first() -> None:
    assert scrub("'pass123' and 'pass'", ["pass", "pass123"]) == "'***' and '***'"


def test_url_secrets_finds_passwords_and_bare_tokens() -> None:
    urls = ["nats://ari:pw1@h:4222", "nats://tok@h2:4222", "nats://h3:4222", "amqp://u:@h/"]
    assert sorted(url_secrets(urls, "given", None, "")) == ["given", "pw1", "tok"]


def test_redact_url_keeps_working() -> None:
    assert redact_url("nats://u:p@ss/w0rd@h:4222") == "nats://u:***@h:4222"
    assert redact_url("amqp://h/?password=abc") == "amqp://h/?password=***"


# --- real library texts --------------------------------------------------------------------


async def test_an_aiohttp_error_that_echoes_the_url_is_hidden() -> None:
    secret = "s3cret pw"  # a space: the URL is invalid, and aiohttp says so with the URL
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as info:
            await session.get(f"http://ari:{secret}@127.0.0.1:abc/ari")
    text = f"{type(info.value).__name__}: {info.value}"
    assert secret in text  # the library does echo it
    shown = scrub(text, [secret])
    assert "s3cret" not in shown and shown.endswith("http://ari:***@127.0.0.1:abc/ari")


@pytest.mark.parametrize("secret", ["b", "app", "hunter2"])
def test_a_python_error_that_echoes_a_value_is_hidden(secret: str) -> None:
    with pytest.raises(ValueError) as info:
        int(secret)
    assert scrub(str(info.value), [secret]) == "invalid literal for int() with base 10: '***'"


@pytest.mark.parametrize("secret", ["b", "t", "hunter2"])
async def test_nats_connection_failures_show_no_secret_and_no_garbling(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The NATS transport's own lines, with a one-letter password: the URL is redacted and
    the rest of each line is intact."""
    caplog.set_level(logging.WARNING, logger="ari_proxy.bus")
    bus = NatsTransport([f"nats://ari:{secret}@127.0.0.1:1"], reconnect_wait=(0.01, 0.02))
    task = asyncio.create_task(bus.connect())
    try:
        for _ in range(200):
            if caplog.records:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await bus.close()
        await asyncio.gather(task, return_exceptions=True)
    message = caplog.records[0].getMessage()
    assert message.startswith("could not connect to NATS at nats://ari:***@127.0.0.1:1 (attempt 1)")
    assert "Connect call failed ('127.0.0.1', 1)" in message, message
    assert f":{secret}@" not in message


def test_the_server_reports_a_bad_application_without_garbling() -> None:
    """The message as the user saw it: ARI password `b`, application `a.b`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARI_", "MESSAGEBUS_"))}
    env.update(HOME="/nonexistent", ARI_USERNAME="u", ARI_PASSWORD="b", ARI_APPLICATION="a.b")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ari-proxy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "ARI application 'a.b' cannot be a bus subject token" in done.stderr, done.stderr
