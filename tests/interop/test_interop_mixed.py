"""Mixed clusters: a Go server and ours serve one application on one bus, for two Asterisks.

Our server sits beside the first Asterisk and the real Go server (`ari-proxy-go` v5) beside the
second. Creates without a node go to the create queue both servers share: each runs on exactly
one node, and both take some. Go clients and ours work side by side, and `listen()` still hands
each call to exactly one instance while a Go server is in the cluster.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy import event_type
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect
from ari_proxy.testing import GoReference, Instance, running_proxy

pytest_plugins = ["interop_fixtures"]
pytestmark = pytest.mark.interop(client="go+ours", server="go+ours")


@pytest_asyncio.fixture
async def cluster(
    goref: GoReference,
    asterisk: Instance,
    asterisk2: Instance,
    bus_url: str,
    app_name: str,
) -> AsyncIterator[dict[str, str]]:
    """Our server on the first Asterisk, the Go server on the second: node -> who serves it."""

    async with running_proxy(asterisk, bus_url, app_name):
        async with goref.server(asterisk2, bus_url, app_name):
            yield {asterisk.entity_id: "ours", asterisk2.entity_id: "go"}


@contextlib.asynccontextmanager
async def connected(bus_url: str, app_name: str, nodes: int = 2) -> AsyncIterator[ProxyClient]:
    """Our client, once it has seen `nodes` servers of the application announce themselves."""
    async with proxy_connect(app_name, bus_url, timeout=5.0) as client:
        seen = asyncio.Event()

        def count(*_: object) -> None:
            if len({n.node for n in client.nodes()}) >= nodes:
                seen.set()

        client.on_node_change(count)
        count()
        async with asyncio.timeout(10):
            while not seen.is_set():
                await client.refresh()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await seen.wait()
        yield client


async def hang_up_all(client: ari_proxy.Client, handles: list[ari_proxy.ChannelHandle]) -> None:
    for handle in handles:
        with contextlib.suppress(ari_proxy.NotFoundError):
            await handle.hangup()


async def test_creates_run_once_and_spread_over_both_servers(
    cluster: dict[str, str], bus_url: str, app_name: str
) -> None:
    async with connected(bus_url, app_name) as client, asyncio.timeout(60):
        async with client.subscribe("StasisStart") as started:
            placed = [await client.channels.originate("Local/wait@default") for _ in range(16)]
            starts: collections.Counter[str] = collections.Counter()
            while sum(starts.values()) < len(placed):
                event = await started.next(timeout=10)
                starts[event.channel.id] += 1  # type: ignore[attr-defined]
        try:
            assert {h.id for h in placed} == set(starts)
            assert set(starts.values()) == {1}  # each create ran once
            by_server = collections.Counter(cluster[h.node] for h in placed)
            assert set(by_server) == {"ours", "go"}, by_server  # both took creates
            # Asterisk holds exactly the channels we placed (and their Local ;2 halves).
            listed = {h.id for h in await client.channels.list() if h.id in starts}
            assert listed == set(starts)
        finally:
            await hang_up_all(client, placed)


async def test_go_clients_and_ours_side_by_side(
    cluster: dict[str, str], goref: GoReference, bus_url: str, app_name: str
) -> None:
    async with connected(bus_url, app_name) as client, asyncio.timeout(60):
        ours = [
            await client.channels.originate("Local/wait@default", node=node) for node in cluster
        ]
        go_ids = [
            (await goref.client("originate", bus_url=bus_url, application=app_name))[0]["result"]
            for _ in range(4)
        ]
        try:
            # Ours lists both nodes' channels and sees what the Go client created, wherever it
            # ran; it can act on those channels.
            mine = {h.id: h for h in await client.channels.list()}
            assert {h.id for h in ours} | set(go_ids) <= set(mine)
            assert {h.node for h in mine.values()} == set(cluster)
            # A Go client process closes a gather after as many replies as its cluster map
            # expects, and a fresh one knows no server yet: it takes the first answer only
            # (docs/interop.md). What it lists is real, from one of the two servers.
            listing = await goref.client("channels", bus_url=bus_url, application=app_name)
            go_keys = {(k["id"], k["node"], k["app"]) for k in listing[0]["result"]}
            assert go_keys <= {(h.id, h.node, app_name) for h in mine.values()}
            for ident in go_ids:
                await mine[ident].answer()
                assert (await mine[ident].data()).state == "Up"
            info = await goref.client("info", bus_url=bus_url, application=app_name)
            assert info[0]["result"]["system"]["entity_id"] in cluster
        finally:
            await hang_up_all(client, ours + [client.channels.handle(i) for i in go_ids])


async def test_listen_gives_each_call_to_one_instance(
    cluster: dict[str, str], bus_url: str, app_name: str
) -> None:
    calls_per_node = 6
    expected = calls_per_node * len(cluster)
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(90):
        caller = await stack.enter_async_context(connected(bus_url, app_name))
        instances = [
            await stack.enter_async_context(connected(bus_url, app_name)) for _ in range(3)
        ]
        listeners = [await stack.enter_async_context(i.listen()) for i in instances]
        taken: dict[str, list[int]] = collections.defaultdict(list)
        ended: list[str] = []
        all_ended = asyncio.Event()
        placed: list[ari_proxy.ChannelHandle] = []

        async def take(index: int) -> None:
            while True:
                call = await listeners[index].next()
                taken[call.channel.id].append(index)
                async with call:  # the instance controls the call it was given
                    await call.channel.answer()
                    await call.channel.hangup()
                    while event_type(await call.events.next(timeout=10)) != "ChannelDestroyed":
                        pass
                ended.append(call.channel.id)
                if len(ended) >= expected:
                    all_ended.set()

        takers = [asyncio.create_task(take(i)) for i in range(len(instances))]
        try:
            for _ in range(calls_per_node):
                for node in cluster:
                    placed.append(await caller.channels.originate("Local/wait@default", node=node))
            done = asyncio.create_task(all_ended.wait())
            await asyncio.wait([done, *takers], return_when=asyncio.FIRST_COMPLETED)
            for task in takers:
                if task.done():
                    task.result()  # a taker that failed shows why
            # Every call has ended; an offer made twice would be waiting in some queue by now.
            for listener in listeners:
                with pytest.raises(TimeoutError):
                    await listener.next(timeout=0.3)
        finally:
            for task in takers:
                task.cancel()
            await asyncio.gather(*takers, return_exceptions=True)
            await hang_up_all(caller, placed)
        assert set(taken) == {h.id for h in placed}
        assert all(len(who) == 1 for who in taken.values()), taken  # exactly one instance each
        assert sorted(ended) == sorted(taken)
        served = collections.Counter(cluster[h.node] for h in placed)
        assert served == {"ours": calls_per_node, "go": calls_per_node}
