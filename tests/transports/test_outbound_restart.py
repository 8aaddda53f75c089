"""A proxy SIGKILLed and started again with calls up: in outbound mode no event is lost.

Six calls are up, taken by three instances in `listen()` (on NATS, and on RabbitMQ). The
proxy process is killed; while no process runs, each call's channel gets three variables set
(three `ChannelVarset` events its instance should see); then the proxy starts again and a user
event is raised on each call (the `ChannelUserevent` that says the events of the time before
have all arrived).

- Inbound mode (the proxy dials Asterisk's events WebSocket): Asterisk throws the events of the
  outage away ("missed message"), and every call is told so with a `ConnectionGap`.
- Outbound persistent mode (Asterisk dials the proxy): Asterisk holds the events and sends them
  when the new process is dialled; the new server publishes them once the instances have bound
  their calls again, and announces `held-events`, so no instance is told of a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_proxy import AriProxyError, Call
from ari_proxy.client import ProxyClient
from ari_proxy.testing import (
    CallSource,
    Instance,
    Ledger,
    outbound_spec,
    proxy_env,
    start,
    stop,
    takers,
    wait_until,
)

pytestmark = pytest.mark.integration

ARI_PROXY = str(Path(sys.executable).parent / "ari-proxy")
CALLS = 6
MARKS = 3
"""Variables set on each call while no proxy runs."""


def _environment(inst: Instance, bus_url: str, app: str, outbound: bool) -> dict[str, str]:
    env = proxy_env(inst, bus_url, app, PROXY_LISTEN_RESUME_GRACE="1s")
    if outbound:
        host_port = inst.spec.outbound_url.removeprefix("ws://").partition("/")[0]
        env.update(
            ARI_LISTEN=host_port,
            ARI_LISTEN_USERNAME=inst.outbound_username,
            ARI_LISTEN_PASSWORD=inst.outbound_password,
            ARI_TRANSPORT="websocket",
        )
    return env


async def _proxy(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        ARI_PROXY, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


@contextlib.asynccontextmanager
async def _asterisk(mode: str, shared: Instance, app: str) -> AsyncIterator[tuple[Instance, bool]]:
    """The session instance for inbound mode; one of its own, dialling us, for outbound."""
    if mode == "inbound":
        yield shared, False
        return
    spec = outbound_spec(f"pytest-{os.getpid()}-kill-{app.removeprefix('t-')}", app)
    inst = await asyncio.to_thread(start, spec)
    try:
        yield inst, True
    finally:
        await asyncio.to_thread(stop, inst.name)


async def _sentinel(call: Call, ledger: Ledger) -> None:
    """Raise a user event on the call through the restarted proxy until one reaches the call's
    events: it follows every event of the outage there. (Inbound, the call's dialog is bound
    again only a moment after the new process answers; an event before that is in the gap.)"""
    channel = call.channel.id
    async with asyncio.timeout(20):
        while "ChannelUserevent" not in ledger.events[channel]:
            try:
                await call.channel.user_event("sentinel")
            except AriProxyError:
                await asyncio.sleep(0.2)  # pacing: the new process is not serving yet
                continue
            for _ in range(10):  # bounded: the event follows within moments, or never
                if "ChannelUserevent" in ledger.events[channel]:
                    return
                await asyncio.sleep(0.1)


@pytest.mark.parametrize("bus", ["nats", "rabbitmq"])
@pytest.mark.parametrize("mode", ["inbound", "outbound"])
async def test_a_killed_proxy_with_calls_up(
    mode: str, bus: str, asterisk: Instance, request: pytest.FixtureRequest, app_name: str
) -> None:
    bus_url = str(request.getfixturevalue(f"{bus}_url"))
    ledger = Ledger()
    async with _asterisk(mode, asterisk, app_name) as (inst, outbound):
        env = _environment(inst, bus_url, app_name, outbound)
        proxy = await _proxy(env)
        try:
            async with takers(bus_url, app_name, ledger, hold=None) as group:
                client = group[0].client
                assert isinstance(client, ProxyClient)
                await wait_until(lambda: bool(client.nodes()), timeout=30)
                async with CallSource(inst, app_name, ledger) as source:
                    await source.place(CALLS, 3.0)
                    await wait_until(lambda: len(ledger.taken) == CALLS, timeout=20)
                    assert source.client is not None
                    calls = {c: call for taker in group for c, call in taker.calls.items()}
                    assert len(calls) == CALLS
                    proxy.send_signal(signal.SIGKILL)
                    await proxy.wait()
                    seen = {channel: len(ledger.events[channel]) for channel in calls}
                    for channel in calls:  # the proxy is down: who hears these?
                        for i in range(MARKS):
                            await source.client.channels.handle(channel).set_variable(
                                "MARK", str(i)
                            )
                    proxy = await _proxy(env)
                    await asyncio.gather(*(_sentinel(call, ledger) for call in calls.values()))
                    after = {c: ledger.events[c][seen[c] :] for c in calls}
                    marks = {c: events.count("ChannelVarset") for c, events in after.items()}
                    for taker in group:
                        taker.release()
                    print(
                        f"\n{mode}, {bus}: {CALLS} calls, {CALLS * MARKS} events raised while the "
                        f"proxy was down, {sum(marks.values())} delivered, "
                        f"{len(ledger.gaps)} calls told of a gap"
                    )
                    if outbound:
                        assert marks == dict.fromkeys(calls, MARKS), after
                        for events in after.values():  # held, then the sentinel after them
                            last_mark = max(i for i, e in enumerate(events) if e == "ChannelVarset")
                            assert events.index("ChannelUserevent") > last_mark, events
                        assert ledger.gaps == {}
                    else:
                        assert marks == dict.fromkeys(calls, 0), after
                        await wait_until(lambda: len(ledger.gaps) == CALLS, timeout=20)
        finally:
            if proxy.returncode is None:
                proxy.send_signal(signal.SIGTERM)
                await proxy.wait()
    assert ledger.never_taken == [] and ledger.taken_twice == []
