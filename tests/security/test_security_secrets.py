"""Secrets from files, and a bus that refuses the credentials (issue 18, point 3).

- `ARI_PASSWORD_FILE` / `MESSAGEBUS_PASSWORD_FILE` (flags `--ari.password_file`,
  `--messagebus.password_file`, YAML `ari.password_file`, `messagebus.password_file`) hold the
  passwords as Kubernetes secrets and systemd credentials provide them: the trailing line break
  is dropped; a missing or unreadable file is a clear configuration error that never shows the
  content.
- A bus that refuses the credentials at startup ends `ari-proxy` with "the message bus refused
  the credentials ..." and exit code 2 (a real nats-server with a user and a password, and
  RabbitMQ); once connected, a refusal is retried with a WARNING that says it is an
  authentication failure.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from security_kit import ARI_PROXY, AuthNats, proxy_env, wait_for

from ari_proxy import AuthenticationError, ConnectError
from ari_proxy.bus import BusState, connect
from ari_proxy.server import ConfigError, ServerConfig, load_config
from ari_proxy.testing import Instance

pytest_plugins = ["security_fixtures"]

SECRET = "s3cr3t with spaces "
BASE = {"ARI_USERNAME": "u", "ARI_APPLICATION": "app"}


def secret_file(tmp_path: Path, content: str | bytes, name: str = "secret") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n"])
def test_passwords_from_files_lose_only_their_line_break(tmp_path: Path, ending: str) -> None:
    ari = secret_file(tmp_path, SECRET + ending, "ari")
    bus = secret_file(tmp_path, "bus-" + SECRET + ending, "bus")
    env = {**BASE, "ARI_PASSWORD_FILE": ari, "MESSAGEBUS_PASSWORD_FILE": bus}
    config = load_config({}, env)
    assert config.ari_password == SECRET
    assert config.bus_password == "bus-" + SECRET
    assert config.bus_settings().password == "bus-" + SECRET
    assert SECRET not in repr(config) and SECRET not in str(config.describe())


def test_password_files_from_flags_and_yaml(tmp_path: Path) -> None:
    ari = secret_file(tmp_path, "from-flag\n", "ari")
    config = load_config({"ari.password_file": ari}, BASE)
    assert config.ari_password == "from-flag"
    bus = secret_file(tmp_path, "from-yaml\n", "bus")
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump({"ari": {"password_file": ari}, "messagebus": {"password_file": bus}})
    )
    config = load_config({}, BASE, str(path))
    assert (config.ari_password, config.bus_password) == ("from-flag", "from-yaml")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read"),  # missing
        ("", "is empty"),
        ("\n", "is empty"),
        ("one\ntwo\n", "more than one line"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_an_unusable_password_file_is_a_clear_configuration_error(
    tmp_path: Path, content: str | bytes | None, error: str
) -> None:
    path = str(tmp_path / "missing") if content is None else secret_file(tmp_path, content)
    with pytest.raises(ConfigError) as refused:
        load_config({}, {**BASE, "ARI_PASSWORD_FILE": path})
    text = str(refused.value)
    assert error in text and "ari.password_file" in text and path in text
    assert "one" not in text.replace("one line", "") and "\n" not in text


def test_a_directory_is_not_a_password_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"messagebus\.password_file: cannot read"):
        load_config({}, {**BASE, "ARI_PASSWORD": "p", "MESSAGEBUS_PASSWORD_FILE": str(tmp_path)})


def test_a_password_and_its_file_together_are_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "from-file")
    with pytest.raises(ConfigError, match=r"both ari\.password and ari\.password_file") as refused:
        load_config({}, {**BASE, "ARI_PASSWORD": "other", "ARI_PASSWORD_FILE": path})
    assert "other" not in str(refused.value) and "from-file" not in str(refused.value)
    # A copy of a configuration read from a file keeps working (dataclasses.replace).
    import dataclasses

    config = ServerConfig(("app",), "u", ari_password_file=path)
    assert dataclasses.replace(config, max_inflight=3).ari_password == "from-file"


def test_the_command_says_which_file_it_cannot_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-secret")
    done = subprocess.run(
        [ARI_PROXY],
        env=proxy_env(**BASE, ARI_PASSWORD_FILE=missing),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "ari.password_file" in done.stderr
    assert missing in done.stderr


# --- the bus refuses the credentials ------------------------------------------------------------


def _run_proxy(asterisk: Instance, app: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ARI_PROXY],
        env=proxy_env(
            ARI_APPLICATION=app,
            ARI_USERNAME=asterisk.username,
            ARI_PASSWORD=asterisk.password,
            ARI_HTTP_URL=asterisk.http_url,
            ARI_WEBSOCKET_URL=asterisk.ws_url,
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nats_refusing_the_credentials_ends_the_command(
    asterisk: Instance, auth_nats: AuthNats, app_name: str, tmp_path: Path
) -> None:
    wrong = secret_file(tmp_path, "not-the-password\n")
    done = _run_proxy(
        asterisk,
        app_name,
        MESSAGEBUS_URL=f"nats://127.0.0.1:{auth_nats.port}",
        MESSAGEBUS_USER=AuthNats.USER,
        MESSAGEBUS_PASSWORD_FILE=wrong,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the message bus refused the credentials" in done.stderr
    assert "Authorization Violation" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout


async def test_nats_with_the_right_password_file_serves(
    asterisk: Instance, auth_nats: AuthNats, app_name: str, tmp_path: Path
) -> None:
    right = secret_file(tmp_path, AuthNats.PASSWORD + "\n")
    proc = await asyncio.create_subprocess_exec(
        ARI_PROXY,
        env=proxy_env(
            ARI_APPLICATION=app_name,
            ARI_USERNAME=asterisk.username,
            ARI_PASSWORD_FILE=secret_file(tmp_path, asterisk.password + "\n", "ari"),
            ARI_HTTP_URL=asterisk.http_url,
            ARI_WEBSOCKET_URL=asterisk.ws_url,
            MESSAGEBUS_URL=f"nats://127.0.0.1:{auth_nats.port}",
            MESSAGEBUS_USER=AuthNats.USER,
            MESSAGEBUS_PASSWORD_FILE=right,
        ),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b'"msg":"serving"' not in (line := await proc.stderr.readline()):
                assert line, "ari-proxy ended before serving"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


def test_rabbitmq_refusing_the_credentials_ends_the_command(
    asterisk: Instance, rabbitmq_url: str, app_name: str
) -> None:
    done = _run_proxy(
        asterisk,
        app_name,
        MESSAGEBUS_URL=f"amqp://{urlsplit(rabbitmq_url).netloc.rpartition('@')[2]}/",
        MESSAGEBUS_USER="guest",
        MESSAGEBUS_PASSWORD="not-the-password",
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the message bus refused the credentials" in done.stderr
    assert "ACCESS_REFUSED" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout


@pytest.mark.parametrize("scheme", ["nats", "amqp"])
async def test_a_transport_raises_at_once_on_refused_credentials(
    scheme: str, auth_nats: AuthNats, rabbitmq_url: str
) -> None:
    url = (
        auth_nats.url("wrong")
        if scheme == "nats"
        else rabbitmq_url.replace("guest:guest@", "guest:wrong@")
    )
    transport = connect([url])
    try:
        async with asyncio.timeout(10):  # not retried forever
            with pytest.raises(AuthenticationError, match="refused the credentials") as refused:
                await transport.connect()
        assert isinstance(refused.value, ConnectError) and "wrong" not in str(refused.value)
    finally:
        await transport.close()


async def test_a_refusal_after_connecting_is_retried_and_told(
    auth_nats: AuthNats, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.bus")
    transport = connect([auth_nats.url()])
    await transport.connect()
    try:
        auth_nats.reload("changed")  # the server drops the connection, refuses the old password
        await wait_for(lambda: transport.state is BusState.RECONNECTING)
        await wait_for(
            lambda: any("authentication failure" in r.getMessage() for r in caplog.records)
        )
        told = [r for r in caplog.records if "authentication failure" in r.getMessage()]
        assert told[0].levelno == logging.WARNING
        assert AuthNats.PASSWORD not in told[0].getMessage()
        auth_nats.reload(AuthNats.PASSWORD)  # fixed: the transport finds its way back
        await wait_for(lambda: transport.state is BusState.CONNECTED, timeout=20)
    finally:
        await transport.close()
