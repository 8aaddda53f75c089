"""Nothing lost in silence, under faults with calls flowing (docs/delivery.md).

Calls arrive at a steady rate (3 per second, Local channels originated straight through ARI, so
the fault does not stop them) and three instances in `listen()` take them. After each fault:
every call reached exactly one instance and none is left in Asterisk; a call whose server
restarted is told so with a `ConnectionGap` and its events keep reaching its instance; no
request runs after its caller gave up; and dialog bindings drain to zero.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

import ari_proxy
from ari_proxy import Call
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect
from ari_proxy.testing import (
    CallSource,
    Instance,
    Ledger,
    NatsCluster,
    TcpProxy,
    proxy_env,
    running_proxy,
    takers,
    wait_until,
)

RATE = 3.0
"""Calls per second."""
OUTAGE = 3.0
"""Seconds the bus is down."""
ARI_PROXY = str(Path(sys.executable).parent / "ari-proxy")


async def all_settled(source: CallSource, ledger: Ledger, timeout: float = 40.0) -> None:
    """Until every placed call is gone from Asterisk (taken and ended, or settled by the
    fallback): bounded polling, there is no event for "nothing left"."""
    left: list[str] = ledger.placed
    async with asyncio.timeout(timeout):
        while left:
            left = await source.left_in_asterisk()
            if left:
                await asyncio.sleep(0.5)


def assert_nothing_lost(ledger: Ledger) -> None:
    summary = ledger.summary()
    assert ledger.placed, summary
    assert ledger.never_taken == [], summary
    assert ledger.taken_twice == [], summary


# --- a bus restarted while calls arrive ----------------------------------------------------------


async def test_calls_survive_a_nats_restart(asterisk: Instance, app_name: str) -> None:
    with NatsCluster(1) as nats:
        url = nats.urls[0]
        ledger = Ledger()
        async with running_proxy(asterisk, url, app_name), takers(url, app_name, ledger):
            async with CallSource(asterisk, app_name, ledger) as source:
                placing = asyncio.create_task(source.place(int(RATE * 8), RATE))
                await asyncio.sleep(2.0)  # pacing: calls flow before the fault
                await asyncio.to_thread(nats.stop, 0)
                await asyncio.sleep(OUTAGE)  # pacing: the outage lasts OUTAGE seconds
                await asyncio.to_thread(nats.start, 0)
                await placing
                await all_settled(source, ledger)
    assert_nothing_lost(ledger)


async def _rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


async def test_calls_survive_a_rabbitmq_restart(
    asterisk: Instance, rabbitmq_url: str, app_name: str
) -> None:
    ledger = Ledger()
    async with running_proxy(asterisk, rabbitmq_url, app_name):
        async with takers(rabbitmq_url, app_name, ledger):
            async with CallSource(asterisk, app_name, ledger) as source:
                placing = asyncio.create_task(source.place(int(RATE * 8), RATE))
                await asyncio.sleep(2.0)  # pacing: calls flow before the fault
                try:
                    await _rabbitmqctl("stop_app")
                    await asyncio.sleep(OUTAGE)  # pacing: the outage lasts OUTAGE seconds
                finally:
                    await _rabbitmqctl("start_app")
                await placing
                await all_settled(source, ledger)
    assert_nothing_lost(ledger)


# --- a proxy killed and started again with calls up -------------------------------------------


async def _proxy_process(asterisk: Instance, bus_url: str, app: str) -> asyncio.subprocess.Process:
    env = proxy_env(asterisk, bus_url, app, PROXY_LISTEN_RESUME_GRACE="1s")
    return await asyncio.create_subprocess_exec(
        ARI_PROXY, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_restarted_proxy_loses_no_call_in_silence(
    asterisk: Instance, nats_url: str, app_name: str, stop: signal.Signals
) -> None:
    """Killed, or stopped cleanly (it says it leaves): either way its calls keep their
    instance, which hears of the gap and binds them again on the new process."""
    ledger = Ledger()
    calls = 6
    proxy = await _proxy_process(asterisk, nats_url, app_name)
    try:
        async with takers(nats_url, app_name, ledger, hold=None) as group:
            client = group[0].client
            assert isinstance(client, ProxyClient)
            await wait_until(lambda: bool(client.nodes()), timeout=20)
            async with CallSource(asterisk, app_name, ledger) as source:
                await source.place(calls, RATE)
                await wait_until(lambda: len(ledger.taken) == calls, timeout=20)
                epoch = client._backend.cluster._epochs  # type: ignore[attr-defined]
                before = dict(epoch)
                proxy.send_signal(stop)
                await proxy.wait()
                proxy = await _proxy_process(asterisk, nats_url, app_name)
                # Every live call hears that events may have been lost ...
                await wait_until(lambda: len(ledger.gaps) == calls, timeout=20)
                assert dict(epoch) != before
                assert all(g.source == "proxy" for gs in ledger.gaps.values() for g in gs)
                # ... and its events reach its instance again (the bindings were sent anew).
                for taker in group:
                    for channel, call in taker.calls.items():
                        await _varset_arrives(call, ledger, channel)
                for taker in group:
                    taker.release()
                await all_settled(source, ledger)
        assert ledger.ended == set(ledger.placed)  # ChannelDestroyed reached every instance
        assert_nothing_lost(ledger)
    finally:
        if proxy.returncode is None:
            proxy.send_signal(signal.SIGTERM)
            await proxy.wait()


async def _varset_arrives(call: Call, ledger: Ledger, channel: str) -> None:
    """Set a variable on the call until its ChannelVarset reaches the call's events."""
    async with asyncio.timeout(15):
        while True:
            seen = ledger.events[channel].count("ChannelVarset")
            await call.channel.set_variable("DELIVERY_CHECK", "1")
            for _ in range(10):  # bounded: the event follows within moments, or never
                if ledger.events[channel].count("ChannelVarset") > seen:
                    return
                await asyncio.sleep(0.1)


# --- requests during an outage --------------------------------------------------------------------


async def test_no_request_runs_after_its_caller_gave_up(asterisk: Instance, app_name: str) -> None:
    with NatsCluster(1) as nats:
        url = nats.urls[0]
        async with running_proxy(asterisk, url, app_name) as server:
            async with proxy_connect(app_name, url, timeout=1.0) as client:
                node = server.node
                failed: list[str] = []
                succeeded: list[str] = []

                async def one(i: int) -> None:
                    bridge = f"{app_name}-b{i}"
                    try:
                        await client.bridges.create(bridge_id=bridge, node=node)
                    except ari_proxy.AriProxyError:  # timed out, bus down, no server yet
                        failed.append(bridge)
                    else:
                        succeeded.append(bridge)

                async def load() -> None:
                    tasks = []
                    for i in range(int((OUTAGE + 2) * 10)):
                        tasks.append(asyncio.create_task(one(i)))
                        await asyncio.sleep(0.1)  # pacing: a request every 100 ms
                    await asyncio.gather(*tasks)

                loading = asyncio.create_task(load())
                await asyncio.sleep(1.0)  # pacing: requests flow before the fault
                await asyncio.to_thread(nats.stop, 0)
                await asyncio.sleep(OUTAGE)  # pacing: the outage lasts OUTAGE seconds
                await asyncio.to_thread(nats.start, 0)
                await loading
                await wait_until(lambda: server.bus.state.value == "connected", timeout=20)
                # Whatever a reconnecting client flushed late reached the server by now; give
                # it the longest request time to have run, if it wrongly did.
                await asyncio.sleep(1.5)
            async with ari_proxy.connect(
                asterisk.http_url,
                application=f"{app_name}-check",
                username=asterisk.username,
                password=asterisk.password,
            ) as native:
                existing = {h.id for h in await native.bridges.list()}
                for bridge in succeeded:
                    await native.bridges.handle(bridge).destroy()
    assert failed, "the outage made no request fail: the test proves nothing"
    assert set(succeeded) <= existing
    ran_anyway = sorted(set(failed) & existing)
    assert ran_anyway == [], f"{len(ran_anyway)} requests ran after their caller saw an error"


# --- bindings drain -------------------------------------------------------------------------------


async def test_bindings_drain_after_the_last_call(
    asterisk: Instance, nats_url: str, app_name: str
) -> None:
    ledger = Ledger()
    async with running_proxy(asterisk, nats_url, app_name) as server:
        async with takers(nats_url, app_name, ledger, hold=0.5):
            async with CallSource(asterisk, app_name, ledger) as source:
                await source.place(9, RATE)
                # A call hung up before anyone took it: a late take must leave nothing behind.
                late = await source.client.channels.originate(  # type: ignore[union-attr]
                    "Local/wait@default", app=app_name
                )
                await late.hangup()
                await all_settled(source, ledger)
        await wait_until(lambda: server.stats()["dialog_bindings"] == 0, timeout=10)
        assert server.stats()["calls_owned"] == 0
    assert len(ledger.taken) >= 9


# --- the ARI link lost while calls arrive --------------------------------------------------------


async def test_an_ari_link_cut_loses_no_call_in_silence(
    asterisk: Instance, nats_url: str, app_name: str
) -> None:
    """The calls up are told of the gap and keep their owner. Once the link is back the server
    looks for calls in Stasis that nobody owns (their StasisStart may have been lost), and
    must not mistake for such the calls that ended during its grace. The calls that arrive
    while it is cut are refused by Asterisk (nobody holds the application's WebSocket), so
    none is left waiting in Stasis."""
    ledger = Ledger()
    async with TcpProxy("127.0.0.1", asterisk.spec.http_port) as link:
        ari = {
            "ari_http_url": f"http://127.0.0.1:{link.port}/ari",
            "ari_websocket_url": f"ws://127.0.0.1:{link.port}/ari/events",
            "listen_resume_grace": 1.0,
        }
        async with (
            running_proxy(asterisk, nats_url, app_name, **ari) as server,
            takers(nats_url, app_name, ledger, hold=None) as group,
            CallSource(asterisk, app_name, ledger) as source,
        ):
            await source.place(2, RATE)
            await wait_until(lambda: len(ledger.taken) == 2, timeout=20)
            up = list(ledger.taken)
            await link.cut()
            await wait_until(lambda: not server.ari_connected, timeout=10)
            await source.place(3, RATE)
            await link.restore()
            await wait_until(lambda: all(ledger.gaps.get(c) for c in up), timeout=20)
            for taker in group:
                taker.release()  # the calls up end within the grace
            await wait_until(lambda: set(up) <= ledger.ended, timeout=20)
            await wait_until(lambda: not _resuming(), timeout=20)
            await all_settled(source, ledger)
            offers = server.offers.counters["offers"]
    assert ledger.taken_twice == [], ledger.summary()
    assert offers == 2  # the calls up, once each: none offered again after the gap
    assert all(gap.source == "ari" for c in up for gap in ledger.gaps[c])


def _resuming() -> bool:
    """Whether a server in this process is still looking for calls to offer after a gap."""
    names = {"resume calls", "resume offers"}
    return any(task.get_name() in names for task in asyncio.all_tasks())
