"""Fair and bounded under floods (issue 18, point 3: announcements and in-flight requests).

- Announcements are coalesced: at most one round per 100 ms whatever the ping rate (5,000 pings
  in a second give at most 50 announcements), and a ping is still answered within ~100 ms.
- `proxy.max_inflight` is shared between clients (known by their reply inbox): one busy client
  cannot take every slot while another one waits (docs/operations.md, "Limits under load").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from security_kit import body

from ari_proxy.bus import BusMessage, MemoryBroker
from ari_proxy.protocol import Subjects
from ari_proxy.server import Server
from ari_proxy.server._admission import MIN_SHARE, Admission, client_of
from ari_proxy.server._announcer import MIN_GAP, Announcer
from ari_proxy.server._counters import Counters
from ari_proxy.testing import Instance, running_proxy

pytest_plugins = ["security_fixtures"]


# --- announcements ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def announced() -> AsyncIterator[tuple[Announcer, list[float]]]:
    broker = MemoryBroker()
    bus, spy = broker.transport(), broker.transport()
    await bus.connect()
    await spy.connect()
    seen: list[float] = []
    loop = asyncio.get_running_loop()
    await spy.subscribe("ari.announce", lambda m: seen.append(loop.time()))
    announcer = Announcer(
        bus, Subjects(), ("a1", "a2"), node=lambda: "n1", is_up=lambda: True, counters=Counters()
    )
    try:
        yield announcer, seen
    finally:
        await announcer.stop()
        await bus.close()
        await spy.close()


async def test_pings_are_coalesced(announced: tuple[Announcer, list[float]]) -> None:
    announcer, seen = announced
    ping = BusMessage("ari.ping", b"{}")
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(100):  # 5,000 pings over one second
        for _ in range(50):
            announcer.on_ping(ping)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    rounds = len(seen) // 2
    assert 5 <= rounds <= 12, rounds  # one per 100 ms, two applications each
    gaps = [b - a for a, b in itertools.pairwise(seen[::2])]
    assert min(gaps) >= MIN_GAP * 0.95, gaps
    assert seen[0] - start < 0.05  # the first ping is answered at once

    # After a quiet moment, a ping is answered within ~100 ms.
    await asyncio.sleep(0.2)
    before, asked = len(seen), loop.time()
    announcer.on_ping(ping)
    async with asyncio.timeout(1):
        while len(seen) == before:
            await asyncio.sleep(0.005)
    assert seen[before] - asked < MIN_GAP + 0.05


async def test_awaited_announcements_keep_the_gap_too(
    announced: tuple[Announcer, list[float]],
) -> None:
    announcer, seen = announced
    await asyncio.gather(*(announcer.announce() for _ in range(5)))
    announcer.soon()
    await asyncio.sleep(MIN_GAP * 2)
    times = seen[::2]
    assert all(b - a >= MIN_GAP * 0.95 for a, b in itertools.pairwise(times)), times


async def test_5000_pings_in_a_second_give_at_most_50_announcements(
    server: Server, nc: NatsClient
) -> None:
    app = server.applications[0]
    got: list[float] = []
    loop = asyncio.get_running_loop()

    async def on_announce(msg: Msg) -> None:
        if json.loads(msg.data).get("application") == app:
            got.append(loop.time())

    sub = await nc.subscribe("ari.announce", cb=on_announce)
    await nc.flush()
    await asyncio.sleep(0.3)  # the announcement of the start, if still on its way
    got.clear()
    try:
        started = time.perf_counter()
        for _ in range(100):
            for _ in range(50):
                await nc.publish("ari.ping", b'{"kind":"","key":null}')
            await nc.flush()
            await asyncio.sleep(0.01)
        sent_in = time.perf_counter() - started
        await asyncio.sleep(0.5)
        flood = len(got)
        print(f"5000 pings in {sent_in:.2f}s: {flood} announcements of {app}")
        assert sent_in < 1.6 and 1 <= flood <= 50, (sent_in, flood)

        # A ping on a quiet bus is still answered within ~100 ms.
        await asyncio.sleep(0.3)
        before, asked = len(got), loop.time()
        await nc.publish("ari.ping", b'{"kind":"","key":null}')
        async with asyncio.timeout(2):
            while len(got) == before:
                await asyncio.sleep(0.005)
        answer = got[before] - asked
        print(f"a ping answered in {answer * 1000:.1f} ms")
        assert answer < 0.15
    finally:
        await sub.unsubscribe()


# --- in-flight requests shared between clients --------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "client"),
    [
        ("_INBOX.AbCdEf123.xyz789", "_INBOX.AbCdEf123"),  # nats-py / nats.go request mux
        ("_INBOX.myapp.AbCdEf123.xyz789", "_INBOX.myapp.AbCdEf123"),  # a scoped connection
        (  # RabbitMQ's direct reply-to: the requester's channel, then a key
            "amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5.CPiAnON1bfAh",
            "amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5",
        ),
        ("rp-0123456789abcdef-rp", ""),  # Go's gather: a bare token, made per request
        ("_INBOX.oldstyle123", ""),  # an old-style inbox made per request
        ("", ""),
    ],
)
def test_a_client_is_its_reply_inbox(reply: str, client: str) -> None:
    assert client_of(reply) == client
    assert len(client_of("_INBOX." + "x" * 1000 + ".y")) == 128


def test_one_client_alone_leaves_an_eighth_for_others() -> None:
    admission = Admission(16)
    assert [admission.admit("a") for _ in range(14)] == [None] * 14
    refused = admission.admit("a")
    assert refused is not None and "its share (14) of 16" in refused
    assert admission.admit("b") is None  # a newcomer finds a slot at once
    assert admission.admit("c") is None
    assert admission.admit("d") == "server busy: 16 requests in flight"
    assert admission.inflight == 16 and (admission.refused_busy, admission.refused_share) == (1, 1)


def test_a_second_client_gets_the_slots_the_first_frees() -> None:
    now = [0.0]
    admission = Admission(16, clock=lambda: now[0])
    for _ in range(14):
        assert admission.admit("busy") is None
    assert admission.admit("quiet") is None  # at once: one eighth is never the busy one's
    assert admission.share() == 8
    for _ in range(6):  # the busy one is over its share: what it frees is not its own again
        admission.release("busy")
        assert admission.admit("busy") is not None
    for _ in range(7):  # ... but the quiet one's, up to its share
        assert admission.admit("quiet") is None
    assert admission.inflight == 16 and admission.refused_share == 6
    # A second later the quiet client (nothing running) is no longer active.
    for _ in range(8):
        admission.release("quiet")
    now[0] = 2.0
    assert admission.clients == 1 and admission.share() == 14


def test_shares_apply_only_when_slots_run_short() -> None:
    """A client that runs many requests at once is refused nothing on a quiet server, however
    many identities are active (a Go client on RabbitMQ has one per request)."""
    admission = Admission(256)
    for i in range(500):
        admission.admit(f"go-rabbitmq-{i}")
        admission.release(f"go-rabbitmq-{i}")
    assert admission.share() == MIN_SHARE
    assert [admission.admit("parallel") for _ in range(128)] == [None] * 128  # half
    assert admission.admit("parallel") is not None  # contended now: beyond its share
    assert admission.admit("another") is None


def test_the_share_has_a_floor_and_can_be_fixed() -> None:
    admission = Admission(16)
    for i in range(100):
        admission.admit(f"c{i}")
        admission.release(f"c{i}")
    assert admission.share() == MIN_SHARE
    fixed = Admission(16, per_client=2)  # an operator's cap applies at any load
    assert [fixed.admit("a") is None for _ in range(3)] == [True, True, False]
    assert fixed.admit("b") is None
    single = Admission(1)
    assert single.admit("a") is None and single.admit("b") is not None


def test_clients_are_remembered_within_a_bound(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.server")
    admission = Admission(1_000_000, max_clients=100)
    for i in range(10_000):
        admission.admit(f"c{i}")
    assert admission.clients <= 100 and admission.forgotten == 9_900
    assert sum("clients at their bound" in r.getMessage() for r in caplog.records) == 1


def test_idle_clients_make_room_before_any_is_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.server")
    now = [0.0]
    admission = Admission(1_000, max_clients=100, clock=lambda: now[0])
    for i in range(1_000):  # ten new clients a second, one short request each
        now[0] = i / 10
        assert admission.admit(f"c{i}") is None
        admission.release(f"c{i}")
    assert admission.forgotten == 0 and admission.clients <= 100
    assert not any("clients at their bound" in r.getMessage() for r in caplog.records)


FLOODER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import nats

    async def main(url, subject, seconds, window):
        nc = await nats.connect(url)
        data = json.dumps({"kind": "AsteriskInfo", "key": {}}).encode()
        codes = {}
        end = time.monotonic() + seconds
        async def worker():
            while time.monotonic() < end:
                try:
                    reply = json.loads((await nc.request(subject, data, timeout=5)).data)
                except Exception:
                    continue
                code = reply.get("code") or "ok"
                codes[code] = codes.get(code, 0) + 1
        await asyncio.gather(*(worker() for _ in range(window)))
        await nc.close()
        print(json.dumps(codes))

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
    """
)


async def _share_of_quiet_client(
    asterisk: Instance, nats_url: str, app: str, nc: NatsClient, **overrides: int
) -> tuple[dict[str, int], dict[str, int]]:
    """A busy client (another process, 200 requests outstanding) and a quiet one (one at a
    time) against one server: the replies each got, by code."""
    async with running_proxy(asterisk, nats_url, app, **overrides) as server:
        subject = f"ari.data.{app}.{server.node}"
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOODER, nats_url, subject, "4", "200",
            stdout=subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(1.0)  # the flood is on
        quiet: dict[str, int] = {}
        data = body({"kind": "AsteriskInfo", "key": {}})
        for index in range(200):
            reply = json.loads((await nc.request(subject, data, timeout=5)).data)
            code = reply.get("code") or "ok"
            quiet[code] = quiet.get(code, 0) + 1
            if code != "ok":
                quiet["last_refused"] = index
            await asyncio.sleep(0.005)
        out, _ = await flood.communicate()
        busy = json.loads(out)
        return busy, quiet


@pytest.mark.slow
async def test_a_busy_client_cannot_starve_a_quiet_one(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    # As before: one queue of 16 slots for everyone (each client's share is all of them).
    busy, quiet = await _share_of_quiet_client(
        asterisk, nats_url, app_name, nc, max_inflight=16, max_inflight_per_client=16
    )
    print(f"without shares: busy client {busy}, quiet client {quiet}")
    # Now: the busy client gets half of the slots while the quiet one is active.
    busy, fair = await _share_of_quiet_client(asterisk, nats_url, app_name, nc, max_inflight=16)
    print(f"with shares: busy client {busy}, quiet client {fair}")
    assert fair.get("ok", 0) == 200, fair
    assert busy.get("ok", 0) > 1000 and busy.get("busy", 0) > 0, busy
