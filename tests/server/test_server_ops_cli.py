"""The operator commands `ari-proxy nodes|tail|call|ping`, run as processes against the real
stack: our server (in this process, so it keeps serving while the command runs) and the Go
server, on NATS and on RabbitMQ; and their failures, each one line on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from server_helpers import ARI_PROXY

from ari_proxy import __version__
from ari_proxy.testing import GoReference, Instance, running_proxy

COMMANDS = ("nodes", "tail", "call", "ping")
SECRET = "Top-Secret-Pa55word"


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARI_", "MESSAGEBUS_"))}
    env["HOME"] = "/nonexistent"  # no ~/.ari-proxy.yaml
    env.update(extra)
    return env


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        ARI_PROXY,
        *args,
        env=env or cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 60) -> Done:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Done:
    return await finish(await spawn(*args, env=env), timeout)


async def wait_for_stderr(proc: asyncio.subprocess.Process, marker: str) -> str:
    assert proc.stderr is not None
    seen = ""
    async with asyncio.timeout(30):
        while marker not in seen:
            line = await proc.stderr.readline()
            assert line, f"ended before {marker!r}: {seen}"
            seen += line.decode()
    return seen


def assert_one_line_failure(done: Done, code: int, *parts: str) -> None:
    assert done.code == code, (done.code, done.out, done.err)
    assert len(done.err_lines) == 1, done.err
    assert "Traceback" not in done.err
    for part in parts:
        assert part in done.err_lines[0], done.err


# --- usage and failures (no stack needed) -----------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
async def test_help_shows_examples_and_the_bus_flags(command: str) -> None:
    done = await run(command, "--help")
    assert done.code == 0, done.err
    assert done.out.startswith(f"usage: ari-proxy {command}")
    for text in ("examples:", f"ari-proxy {command}", "--messagebus.url", "$MESSAGEBUS_URL"):
        assert text in done.out, text
    assert "--connect-timeout" in done.out and "--json" in done.out


async def test_the_server_help_lists_the_commands_and_is_otherwise_unchanged() -> None:
    done = await run("--help")
    assert done.code == 0
    assert "operator commands" in done.out
    for command in COMMANDS:
        assert f"  {command} " in done.out
    for flag in ("--ari.application", "--ari.http_url", "--messagebus.url", "--config", "-v"):
        assert flag in done.out


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # As the server does, credentials in NATS URLs become messagebus.user/password.
        (f"nats://ari:{SECRET}@127.0.0.1:1", "NATS at nats://127.0.0.1:1 "),
        (f"amqp://guest:{SECRET}@127.0.0.1:1/", "RabbitMQ at amqp://guest:***@127.0.0.1:1/ "),
    ],
    ids=["nats", "rabbitmq"],
)
async def test_an_unreachable_bus_is_one_line_and_exit_1(url: str, shown: str) -> None:
    argv = {
        "nodes": ["nodes"],
        "ping": ["ping"],
        "tail": ["tail"],
        "call": ["call", "Local/echo@default", "--app", "x"],
    }
    results = await asyncio.gather(
        *(run(*args, "--connect-timeout", "0.5", "--messagebus.url", url) for args in argv.values())
    )
    for command, done in zip(argv, results, strict=True):
        assert_one_line_failure(
            done,
            1,
            f"ari-proxy {command}: error: cannot connect to {shown}within 0.5s: ",
            "Connect call failed",
        )
        assert SECRET not in done.err + done.out


async def test_the_bus_comes_from_the_environment_like_the_server() -> None:
    done = await run(
        "ping", "--connect-timeout", "0.5", env=cli_env(MESSAGEBUS_URL="nats://127.0.0.1:1")
    )
    assert_one_line_failure(done, 1, "cannot connect to NATS at nats://127.0.0.1:1 within 0.5s")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nodes", "--messagebus.url", f"redis://u:{SECRET}@h"], "unknown message bus URL"),
        (["ping", "--wait", "soon"], "argument --wait: expected seconds"),
        (["call", "Local/echo@default"], "required: --app"),
        (["tail", "--messagebus.password", SECRET, "--bogus", SECRET], "unrecognized arguments"),
        (
            ["nodes", "--messagebus.url", "amqp://h/", "--messagebus.token", SECRET],
            "messagebus.token applies to NATS only",
        ),
    ],
)
async def test_usage_and_configuration_errors_are_one_line_and_exit_2(
    args: list[str], message: str
) -> None:
    done = await run(*args)
    assert_one_line_failure(done, 2, message)
    assert SECRET not in done.err + done.out


async def test_a_bad_application_name_is_one_line() -> None:
    done = await run("tail", "--app", "a.b", "--messagebus.url", "nats://127.0.0.1:1")
    assert_one_line_failure(done, 1, "application 'a.b' cannot be a subject token")


# --- against the real stack -------------------------------------------------------------------


@pytest.fixture(params=["nats", "rabbitmq"])
def bus_url(request: pytest.FixtureRequest, nats_url: str, rabbitmq_url: str) -> str:
    return nats_url if request.param == "nats" else rabbitmq_url


@dataclass
class Target:
    """A server for `app` beside `asterisk`: ours or Go's."""

    kind: str
    app: str
    node: str
    bus_url: str


@pytest_asyncio.fixture(params=["python", pytest.param("go", marks=pytest.mark.goref)])
async def target(
    request: pytest.FixtureRequest, asterisk: Instance, bus_url: str, app_name: str
) -> AsyncIterator[Target]:
    if request.param == "python":
        async with running_proxy(asterisk, bus_url, app_name):
            yield Target("python", app_name, asterisk.entity_id, bus_url)
        return
    goref: GoReference = request.getfixturevalue("goref")
    async with goref.server(asterisk, bus_url, app_name):
        yield Target("go", app_name, asterisk.entity_id, bus_url)


def mine(lines: list[str], target: Target) -> list[list[str]]:
    """The rows of a table that are about the target's node."""
    return [line.split() for line in lines if line.startswith(target.node)]


async def test_ping_and_nodes(target: Target) -> None:
    bus = ["--messagebus.url", target.bus_url]
    ping, ping_json, nodes, nodes_json = await asyncio.gather(
        run("ping", *bus),
        run("ping", "--json", *bus),
        run("nodes", *bus),
        run("nodes", "--json", "--app", target.app, *bus),
    )
    for done in (ping, ping_json, nodes, nodes_json):
        assert done.code == 0, done.err
        assert done.err == ""
    # ping: who answered and the round trip
    assert ping.lines[0].startswith(f"PING {target.bus_url.replace('guest:guest@', 'guest:***@')}")
    assert ping.lines[1].split() == ["NODE", "APPLICATION", "SERVER", "RTT"]
    rows = [row for row in mine(ping.lines, target) if row[1] == target.app]
    assert len(rows) == 1 and rows[0][2] == target.kind and rows[0][4] == "ms", ping.out
    assert float(rows[0][3]) < 1000
    answers = [a for a in json.loads(ping_json.out) if a["application"] == target.app]
    assert [(a["node"], a["server"]) for a in answers] == [(target.node, target.kind)]
    assert answers[0]["rtt_ms"] > 0
    # nodes: a table by node, and JSON
    assert nodes.lines[0].split() == [
        "NODE", "APPLICATIONS", "SERVER", "VERSION", "FEATURES", "LAST", "SEEN"
    ]  # fmt: skip
    rows = [row for row in mine(nodes.lines, target) if target.app in row[1].split(",")]
    assert len(rows) == 1, nodes.out
    node, _apps, server, version, features, *seen = rows[0]
    # Ours announce their version; Go's do not.
    expected_version = __version__ if target.kind == "python" else "-"
    assert (node, server, version) == (target.node, target.kind, expected_version)
    assert features == ("listen,handover" if target.kind == "python" else "-")
    assert seen[-1] == "ago"
    (entry,) = json.loads(nodes_json.out)
    assert entry["node"] == target.node and entry["applications"] == [target.app]
    assert entry["server"] == target.kind
    assert entry["version"] == (__version__ if target.kind == "python" else None)
    assert entry["features"] == (["listen", "handover"] if target.kind == "python" else [])
    assert entry["last_seen"].endswith("Z")


async def test_call_prints_the_events_and_tail_sees_them(target: Target) -> None:
    bus = ["--messagebus.url", target.bus_url]
    tail = await spawn("tail", "--app", target.app, *bus)
    tail_json = await spawn("tail", "--app", target.app, "--type", "StasisStart", "--json", *bus)
    try:
        await wait_for_stderr(tail, "(Ctrl-C stops)")
        await wait_for_stderr(tail_json, "(Ctrl-C stops)")
        call = await run(
            "call", "Local/playback@default", "--app", target.app, "--timeout", "2", *bus
        )
        busy = await run(
            "call", "Local/busy@default", "--app", target.app, "--node", target.node, "--json", *bus
        )
    finally:
        for proc in (tail, tail_json):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        tailed, tailed_json = await finish(tail), await finish(tail_json)

    # call: the channel's events until ChannelDestroyed, then how it ended
    assert call.code == 0, call.err
    notes = call.err_lines
    assert notes[0].startswith("ari-proxy call: Local/playback@default is channel "), notes
    assert notes[0].endswith(f" on node {target.node}, entering {target.app}"), notes
    channel = "channel=" + notes[0].split()[5]
    assert notes[1] == f"ari-proxy call: hanging up {channel[8:]} (after 2s (--timeout))"
    lines = call.lines
    types = [line.split()[3] for line in lines[:-1]]
    assert "StasisStart" in types and types[-1] == "ChannelDestroyed", call.out
    assert lines[-1].startswith("call hung up after 2s (--timeout) by ari-proxy call: "), lines[-1]
    for line in lines[:-1]:
        time_, app, node, _type, *ids = line.split()
        assert len(time_) == 12 and time_[2] == ":" and time_[8] == "."
        assert (app, node) == (target.app, target.node)
        assert channel in ids
    # a call that ends by itself (busy), as JSON lines
    assert busy.code == 0, busy.err
    events = [json.loads(line) for line in busy.lines]
    assert events[-1]["type"] == "ChannelDestroyed"
    assert all(e["application"] == target.app for e in events)

    # tail: readable lines of every event of the app, both calls included
    assert tailed.code == 0, tailed.err
    seen = [line.split() for line in tailed.lines]
    assert any(row[3] == "StasisStart" and channel in row for row in seen), tailed.out
    assert any(row[3] == "ChannelDestroyed" and channel in row for row in seen)
    assert all(row[1] == target.app and row[2] == target.node for row in seen)
    busy_channel = events[-1]["channel"]["id"]
    assert any(f"channel={busy_channel}" in row for row in seen)
    # tail --type StasisStart --json: only StasisStart, as JSON (the busy call never started)
    assert tailed_json.code == 0, tailed_json.err
    started = [json.loads(line) for line in tailed_json.lines]
    assert [e["type"] for e in started] == ["StasisStart"]
    assert f"channel={started[0]['channel']['id']}" == channel


async def test_call_into_an_application_nobody_serves(target: Target) -> None:
    done = await run(
        "call", "Local/echo@default", "--app", target.app + "-none", "--messagebus.url",
        target.bus_url,
    )  # fmt: skip
    assert_one_line_failure(done, 1, f"no ari-proxy server serves application '{target.app}-none'")


async def test_nodes_and_ping_with_nobody_there(bus_url: str, app_name: str) -> None:
    nodes = await run("nodes", "--wait", "0.3", "--app", app_name, "--messagebus.url", bus_url)
    assert_one_line_failure(nodes, 1, "no ari-proxy server announced itself within 0.3s")
