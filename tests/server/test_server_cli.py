"""The `ari-proxy` command as a process: configuration, exit codes, signals, logs, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from server_helpers import ARI_PROXY, collect, proxy_env, unicast

from ari_proxy.testing import Instance, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`

SECRET = "Top-Secret-Pa55word"


def run(
    args: list[str], env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ARI_PROXY, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


async def spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        ARI_PROXY,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def read_until(proc: asyncio.subprocess.Process, marker: str, timeout: float = 20) -> str:
    """Stderr up to and including the first line holding `marker`."""
    assert proc.stderr is not None
    seen = ""
    async with asyncio.timeout(timeout):
        while marker not in seen:
            line = await proc.stderr.readline()
            assert line, f"exited before {marker!r}: {seen}"
            seen += line.decode()
    return seen


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines (every line the server logs is one JSON object)."""
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= set(p) for p in parsed)
    return parsed


def test_version_and_help() -> None:
    result = run(["--version"], proxy_env())
    assert result.returncode == 0 and result.stdout.startswith("ari-proxy ")
    result = run(["--help"], proxy_env())
    assert result.returncode == 0
    for flag in ("--ari.application", "--ari.http_url", "--messagebus.url", "--config", "-v"):
        assert flag in result.stdout


def test_bad_configuration_exits_2_without_the_password(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(f"ari: {{password: {SECRET}\n")
    cases = [
        (["--ari.password", SECRET], {}, "no username found"),
        (["--ari.username", "u"], {}, "no password found"),
        (
            [],
            {"ARI_USERNAME": "u", "ARI_PASSWORD": SECRET, "ARI_APPLICATION": "a.b"},
            "subject token",
        ),
        (
            ["--messagebus.url", f"redis://u:{SECRET}@h"],
            {"ARI_USERNAME": "u", "ARI_PASSWORD": SECRET},
            "unknown message bus URL",
        ),
        (["--config", str(bad_yaml)], {}, "not valid YAML"),
        (["--ari.usernme", SECRET], {}, "unrecognized arguments: --ari.usernme"),
        (
            ["--proxy.request_timeout", SECRET],
            {"ARI_USERNAME": "u", "ARI_PASSWORD": SECRET},
            "proxy.request_timeout",
        ),
        (
            ["--proxy.loop", "trio"],
            {"ARI_USERNAME": "u", "ARI_PASSWORD": SECRET},
            "proxy.loop 'trio': expected auto, asyncio or uvloop",
        ),
    ]
    for args, env, message in cases:
        result = run(args, proxy_env(**env))
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert SECRET not in result.stderr + result.stdout


async def test_precedence_flag_over_env_over_file(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient, tmp_path: Path
) -> None:
    config = tmp_path / "ari-proxy.yaml"
    config.write_text(
        f"ari:\n  username: {asterisk.username}\n  password: {asterisk.password}\n"
        f"  application: {app_name}-file\n  http_url: {asterisk.http_url}\n"
        f"messagebus:\n  url: nats://127.0.0.1:1\n"
    )
    env = proxy_env(ARI_APPLICATION=f"{app_name}-env", MESSAGEBUS_URL=nats_url)
    async with collect(nc, "ari.announce") as got:
        proc = await spawn(["--config", str(config), "--ari.application", app_name], env)
        try:
            # The flag's application, the environment's bus, the file's ARI settings.
            await got.wait_for(lambda: any(a["application"] == app_name for a in got.json()), 20)
            assert not any(a["application"].endswith(("-env", "-file")) for a in got.json())
        finally:
            proc.send_signal(signal.SIGTERM)
            code, output = await finish(proc)
    assert code == 0, output
    logs = log_lines(output)
    assert any(line["msg"] == "serving" for line in logs)
    assert asterisk.password not in output


@pytest.mark.parametrize(("choice", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
async def test_event_loop_setting(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient, choice: str, loop: str
) -> None:
    # uvloop is a dependency (pyproject.toml), so `auto` finds it here.
    env = proxy_env(asterisk, nats_url, app_name, PROXY_LOOP=choice)
    async with collect(nc, "ari.announce") as got:
        proc = await spawn([], env)
        try:
            await got.wait_for(lambda: any(a["application"] == app_name for a in got.json()), 20)
            node = next(a["node"] for a in got.json() if a["application"] == app_name)
            body = b'{"kind":"AsteriskInfo","key":{"node":"%s"}}' % node.encode()
            reply = await nc.request(unicast("get", app_name, node), body, timeout=10)
            assert json.loads(reply.data)["error"] == ""
        finally:
            proc.send_signal(signal.SIGTERM)
            code, output = await finish(proc)
    assert code == 0, output
    assert any(line["msg"] == f"event loop: {loop}" for line in log_lines(output))


async def test_sigterm_finishes_requests_in_flight(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    env = proxy_env(
        ARI_USERNAME=asterisk.username,
        ARI_PASSWORD=asterisk.password,
        ARI_HTTP_URL=asterisk.http_url,
        ARI_APPLICATION=app_name,
        MESSAGEBUS_URL=nats_url,
    )
    async with collect(nc, "ari.announce") as got:
        proc = await spawn(["--ari.max_connections", "2"], env)
        await got.wait_for(lambda: any(a["application"] == app_name for a in got.json()), 20)
    node = next(a["node"] for a in got.json() if a["application"] == app_name)
    replies: list[dict[str, Any]] = []
    first = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        replies.append(json.loads(msg.data))
        first.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    count = 40
    for _ in range(count):
        body = b'{"kind":"SoundList","key":{},"sound_list":{"filters":null}}'
        await nc.publish(unicast("get", app_name, node), body, reply=inbox)
    await nc.flush()
    await asyncio.wait_for(first.wait(), 10)
    proc.send_signal(signal.SIGTERM)
    code, output = await finish(proc)
    # It replied to all before exiting: wait (bounded) for the last replies to reach us.
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: len(replies) >= count, timeout=5)
    await sub.unsubscribe()
    assert code == 0, output
    assert len(replies) == count and all(r["error"] == "" and r["keys"] for r in replies)
    logs = log_lines(output)
    messages = [line["msg"] for line in logs]
    assert "shutting down" in messages and "stopped" in messages
    assert "waiting for requests in flight" in messages  # SIGTERM did find work in progress
    stopped = next(line for line in logs if line["msg"] == "stopped")
    assert stopped["stats"]["replies"] == count
    assert asterisk.password not in output


async def test_secrets_stay_out_of_failure_logs(asterisk: Instance, app_name: str) -> None:
    # Wrong ARI password and an unreachable bus with credentials: the server keeps retrying
    # and logging; neither secret may show.
    env = proxy_env(
        ARI_USERNAME=asterisk.username,
        ARI_PASSWORD=SECRET,
        ARI_HTTP_URL=asterisk.http_url,
        ARI_APPLICATION=app_name,
        MESSAGEBUS_URL=f"nats://bob:{SECRET}x@127.0.0.1:1",
        MESSAGEBUS_TOKEN=SECRET + "t",
    )
    proc = await spawn(["-v"], env)
    seen = await read_until(proc, '"level":"warning"')
    for _ in range(2):  # a few more attempts, each logged
        seen += await read_until(proc, '"level":"warning"')
    proc.send_signal(signal.SIGTERM)
    code, output = await finish(proc)
    output = seen + output
    assert code == 0, output
    logs = log_lines(output)
    assert any(line["level"] == "warning" for line in logs), output
    assert SECRET not in output
    assert "starting" in [line["msg"] for line in logs]


async def test_signal_during_startup_exits_cleanly(asterisk: Instance, app_name: str) -> None:
    env = proxy_env(
        ARI_USERNAME=asterisk.username,
        ARI_PASSWORD=asterisk.password,
        ARI_HTTP_URL="http://127.0.0.1:1/ari",  # never connects
        ARI_APPLICATION=app_name,
    )
    proc = await spawn([], env)
    seen = await read_until(proc, '"msg":"starting"')  # waiting for ARI, past the imports
    proc.send_signal(signal.SIGINT)
    code, output = await finish(proc, timeout=15)
    assert code == 0, seen + output
