"""Live calls outlive their application instance (docs/handover.md), on the real stack.

Two Asterisk nodes, each with our proxy (in this process), and application instances as OS
processes of their own (`python -m ari_proxy.testing.instance`), on NATS and on RabbitMQ:

- crash: 30 live calls (Local and SIP from sipp) held by 3 instances; one is SIGKILLed; every
  call it held reaches a survivor once, with the last state saved beside it, and is controlled
  there (a beep played, then hung up); no call drops. The time from the kill to each handover
  is printed (median, worst).
- deploy: the 3 instances restarted one after another, each drained by SIGTERM, with 30 calls
  live: none drops, and the events of each call (ticks the owner raises on it) show one owner
  at a time.
- nobody left: the only instance is killed; the fallback runs within the configured time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest
from handover_kit import Callers, Fleet, summary

import ari_proxy
from ari_proxy import NoProxyError, TooLargeError
from ari_proxy.client import connect as proxy_connect
from ari_proxy.testing import Instance, running_proxy, wait_until

LOCAL_PER_NODE = 8
SIP_PER_NODE = 7
CALLS = 2 * (LOCAL_PER_NODE + SIP_PER_NODE)


@pytest.fixture(params=["nats", "rabbitmq"])
def bus_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def prefix() -> str:
    """A subject prefix of this test's own: requests other tests broadcast on the shared bus
    (Go clients reach every application's servers) never reach its servers."""
    return f"ho{secrets.token_hex(4)}."


async def _all_taken(fleet: Fleet, saved: str) -> set[str]:
    """Until every call was taken and its state saved (the `saved` suffix); return them."""

    def done() -> set[str] | None:
        channels = {line["channel"] for line in fleet.said("taken")}
        ready = {line["channel"] for line in fleet.said("saved") if line["state"].endswith(saved)}
        return channels if len(channels) == CALLS and channels <= ready else None

    return set(await fleet.wait_for(done, 60))


@pytest.mark.timeout(300)
async def test_a_killed_instance_hands_every_call_over(
    asterisk: Instance,
    asterisk2: Instance,
    bus_url: str,
    app_name: str,
    tmp_path: Path,
    prefix: str,
) -> None:
    nodes = [asterisk, asterisk2]
    async with (
        running_proxy(asterisk, bus_url, app_name, prefix=prefix) as one,
        running_proxy(asterisk2, bus_url, app_name, prefix=prefix) as two,
        Fleet(bus_url, app_name, tmp_path, prefix) as fleet,
    ):
        for i in range(3):
            await fleet.start(f"i{i}", "--finish-handovers")
        await wait_until(lambda: all(s.offers.listeners.live(app_name) == 3 for s in (one, two)))
        async with Callers(app_name, nodes) as callers:
            await callers.place(local=LOCAL_PER_NODE, sip=SIP_PER_NODE)
            channels = await _all_taken(fleet, ":2")
            owners = fleet.owners()
            victim = max(("i0", "i1", "i2"), key=lambda n: list(owners.values()).count(n))
            held = {c for c, name in owners.items() if name == victim}
            assert held, owners
            killed_at = time.time()
            fleet.kill(victim)
            await fleet.wait_for(lambda: {x["channel"] for x in fleet.said("finished")} >= held, 60)

            handovers = fleet.said("handover")
            # exactly once each, and only the calls the victim held
            assert sorted(h["channel"] for h in handovers) == sorted(held)
            for handover in handovers:
                assert handover["name"] != victim
                assert handover["state"] == f"{handover['channel']}:2"  # the last saved
                assert handover["reason"] == "lost"
                assert handover["previous"] == fleet.instance_ids[victim]
                finished = fleet.said("finished", channel=handover["channel"])
                assert [f["name"] for f in finished] == [handover["name"]]  # played, hung up
            # none dropped: the survivors' calls are still up
            assert channels - held <= await callers.existing()
            delays = [h["t"] - killed_at for h in handovers]
            print(f"\nhandover after SIGKILL ({bus_url.split(':')[0]}): {summary(delays)}")

            for name in ("i0", "i1", "i2"):
                if name != victim:
                    await fleet.tell(name, "finish")
            await fleet.wait_for(lambda: len(fleet.said("finished")) == CALLS, 60)
            assert sorted(f["channel"] for f in fleet.said("finished")) == sorted(channels)
            results = await callers.sip_results()
            assert sum(r.successful for r in results) == callers.sip_count, results
            assert sum(r.failed for r in results) == 0, results


def _one_owner_at_a_time(fleet: Fleet, channel: str) -> list[str]:
    """The instances that raised the call's ticks, in Asterisk's order, each once: fails if
    one instance's ticks interleave with another's (two owners at once), or a tick reached two
    instances."""
    ticks = fleet.said("tick", channel=channel)
    values = [t["value"] for t in ticks]
    assert len(values) == len(set(values)), f"{channel}: a tick reached two instances"
    setters: list[str] = []
    for tick in sorted(ticks, key=lambda t: t["ts"]):
        setter = tick["value"].split(":")[0]
        if not setters or setters[-1] != setter:
            assert setter not in setters, f"{channel}: owners interleave: {[*setters, setter]}"
            setters.append(setter)
    return setters


@pytest.mark.timeout(300)
async def test_a_rolling_restart_drains_every_instance_and_drops_no_call(
    asterisk: Instance,
    asterisk2: Instance,
    bus_url: str,
    app_name: str,
    tmp_path: Path,
    prefix: str,
) -> None:
    nodes = [asterisk, asterisk2]
    tick = ("--tick", "0.5")
    async with (
        running_proxy(asterisk, bus_url, app_name, prefix=prefix) as one,
        running_proxy(asterisk2, bus_url, app_name, prefix=prefix) as two,
        Fleet(bus_url, app_name, tmp_path, prefix) as fleet,
    ):
        names = ["i0", "i1", "i2"]
        for name in names:
            await fleet.start(name, *tick)
        await wait_until(lambda: all(s.offers.listeners.live(app_name) == 3 for s in (one, two)))
        async with Callers(app_name, nodes) as callers:
            await callers.place(local=LOCAL_PER_NODE, sip=SIP_PER_NODE)
            channels = await _all_taken(fleet, ":1")
            for generation, name in enumerate(names):
                held = {c for c, owner in fleet.owners().items() if owner == name}
                assert await fleet.stop(name) == 0  # SIGTERM: drained, then exited
                (drained,) = fleet.said("drained", name=name)
                assert drained["handed"] == len(held)
                handed = await fleet.wait_for(
                    lambda name=name, held=held: (
                        {c: o for c, o in fleet.owners().items() if c in held and o != name}
                        if all(fleet.owners()[c] != name for c in held)
                        else None
                    ),
                    30,
                )
                for channel in held:
                    handover = fleet.said(
                        "handover", channel=channel, previous=fleet.instance_ids[name]
                    )
                    assert len(handover) == 1, handover
                    assert handover[0]["reason"] == "drain"
                    saved = [s["state"] for s in fleet.said("saved", channel=channel, name=name)]
                    saving = [s["state"] for s in fleet.said("saving", channel=channel, name=name)]
                    assert handover[0]["state"] in (saved[-1], saving[-1])
                assert set(handed) == held
                await fleet.start(f"{name}-{generation + 1}", *tick)
            # Every call is still up, and its last owner controls it: a beep, then hang up.
            assert channels <= await callers.existing()
            for name in fleet.processes:
                if fleet.processes[name].returncode is None:
                    await fleet.tell(name, "finish")
            await fleet.wait_for(lambda: len(fleet.said("finished")) == CALLS, 60)
            finished = fleet.said("finished")
            assert sorted(f["channel"] for f in finished) == sorted(channels)
            owners = fleet.owners()
            assert all(owners[f["channel"]] == f["name"] for f in finished)
            for channel in channels:
                setters = _one_owner_at_a_time(fleet, channel)
                assert setters[-1] == owners[channel], setters
            results = await callers.sip_results()
            assert sum(r.successful for r in results) == callers.sip_count, results
            assert sum(r.failed for r in results) == 0, results


@pytest.mark.timeout(120)
async def test_with_nobody_left_the_fallback_runs_within_the_configured_time(
    asterisk: Instance, bus_url: str, app_name: str, tmp_path: Path, prefix: str
) -> None:
    liveness, deadline = 2.0, 3.0
    options = {"listen_liveness_timeout": liveness, "listen_deadline": deadline}
    async with (
        running_proxy(asterisk, bus_url, app_name, prefix=prefix, **options) as server,
        Fleet(bus_url, app_name, tmp_path, prefix) as fleet,
    ):
        await fleet.start("only")
        await wait_until(lambda: server.offers.listeners.live(app_name) == 1)
        async with Callers(app_name, [asterisk]) as callers:
            await callers.place(local=3, sip=0)
            taken = await fleet.wait_for(
                lambda: len(fleet.said("saved", name="only")) == 6 and fleet.said("taken"), 30
            )
            killed_at = time.monotonic()
            fleet.kill("only")
            await wait_until(lambda: server.offers.counters["fallbacks"] == 3, 30)
            elapsed = time.monotonic() - killed_at
            assert server.offers.counters["handovers"] == 3  # offered, and nobody took them
            # Silence for the liveness timeout (checked 4 times per timeout), then the deadline;
            # the slack is for a loaded machine, not part of the promise.
            assert elapsed <= liveness * 1.25 + deadline + 2.0, elapsed
            print(f"\nfallback after SIGKILL with nobody left: {elapsed * 1000:.0f} ms")
            called = {line["channel"] for line in taken}
            async with asyncio.timeout(10):
                while called & await callers.existing():  # hung up: no event says so here
                    await asyncio.sleep(0.1)


async def test_a_state_over_the_cap_is_refused_and_states_end_with_their_call(
    asterisk: Instance, bus_url: str, app_name: str, prefix: str
) -> None:
    async with (
        running_proxy(asterisk, bus_url, app_name, prefix=prefix, max_call_state=64) as server,
        proxy_connect(app_name, bus_url, timeout=5.0, prefix=prefix) as client,
        Callers(app_name, [asterisk]) as callers,
        client.listen() as calls,
    ):
        await callers.place(local=1, sip=0)
        call = await calls.next(timeout=15)
        assert not call.handed_over and call.state == b""
        await call.save_state(b"x" * 64)
        with pytest.raises(TooLargeError, match="exceeds the 64 bytes"):
            await call.save_state(b"y" * 65)
        assert server.offers.state_bytes == 64  # the previous state is kept
        async with call.client.subscribe("StasisEnd") as ended:
            await call.channel.hangup()
            await ended.next(timeout=10)
        await wait_until(lambda: server.offers.state_bytes == 0)


async def test_a_native_client_says_it_keeps_no_call_state(
    asterisk: Instance, app_name: str
) -> None:
    async with (
        ari_proxy.connect(
            asterisk.http_url,
            application=app_name,
            username=asterisk.username,
            password=asterisk.password,
        ) as client,
        Callers(app_name, [asterisk]) as callers,
        client.listen() as calls,
    ):
        await callers.place(local=1, sip=0)
        call = await calls.next(timeout=15)
        with pytest.raises(NoProxyError, match="kept by ari-proxy servers"):
            await call.save_state(b"step-1")
        assert await client.drain() == 0
        await call.channel.hangup()
