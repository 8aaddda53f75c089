"""The RabbitMQ topology we create, compared with the one Go v5 creates.

Each broker test gets a fresh, empty virtual host, so what `rabbitmqctl` lists there is exactly
what the transports under test declared. The Go reference is the recorded
`go-v5-rabbitmq-topology.txt` (a Go server for app `rtest` on node `02:fc:00:00:00:01`, and a
Go-style client): names, types, durability, arguments, bindings and consumers are compared row
by row, with ULIDs normalised. The places where we differ on purpose (the client's event
queues, Go defects 33 and 34) are checked on their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiormq
import aiormq.exceptions
import pytest
from pamqp.commands import Basic
from yarl import URL

from ari_proxy._backoff import Backoff
from ari_proxy._exceptions import ProtocolError, RequestTimeout
from ari_proxy.bus import BusMessage, BusState
from ari_proxy.bus._rabbitmq import RabbitTransport
from ari_proxy.bus._rabbitmq_topology import (
    EXCHANGES,
    binding_key,
    classify,
    listen_group_queue,
    route,
    serve_group_queue,
    serve_private_queue,
    topic_matches,
)
from ari_proxy.protocol import Key, Subjects
from ari_proxy.testing._tcpproxy import TcpProxy

VECTORS = Path(os.environ["ARI_PROXY_VECTORS"])
APP, NODE = "rtest", "02:fc:00:00:00:01"  # as in the Go recording, so queue names compare
ULID = re.compile(r"\b[0-9a-hjkmnp-tv-z]{26}\b")

Row = tuple[str, ...]

# --- sans-I/O: subjects and queue shapes ---------------------------------------------------------


def test_routes() -> None:
    assert route("ari.get.app.node", "ari.", "x") == ("ari.request", "ari.get.app.node")
    assert route("ari.create", "ari.", "x") == ("ari.request", "ari.create")
    assert route("ari.event.app.node", "ari.", "x") == ("ari.event", "ari.event.app.node")
    assert route("ari.dialogevent.d1", "ari.", "x") == ("ari.event", "ari.dialogevent.d1")
    assert route("ari.ping", "ari.", "x") == ("ari.ping", "ari.ping")
    assert route("ari.announce", "ari.", "x") == ("ari.announce", "ari.announce")
    # Exchanges are constant whatever the prefix (Go defect 36); unknown subjects follow intent.
    assert route("pbx.announce", "pbx.", "x") == ("ari.announce", "pbx.announce")
    assert route("ari.announce", "pbx.", "ari.event") == ("ari.event", "ari.announce")
    assert route("ari.getter", "ari.", "ari.event") == ("ari.event", "ari.getter")
    assert classify("ari.create.app", "ari.") == "create"
    assert classify("ari.nothing", "ari.") is None
    assert classify("other.create", "ari.") is None


def test_wildcards() -> None:
    assert binding_key("ari.event.app.>") == "ari.event.app.*.#"
    assert binding_key("ari.event.app.#") == "ari.event.app.#"  # as Go binds it
    assert binding_key("ari.event.*.n1") == "ari.event.*.n1"
    # Each wildcard from Subjects, for either bus, keeps its meaning.
    subjects = Subjects()
    assert binding_key(subjects.listen_subscription(APP, "nats")) == f"ari.event.{APP}.*.#"
    # What the proxy client subscribes to, whatever the bus: NATS-style, mapped here.
    assert subjects.event_subscription(Key(app=APP)) == f"ari.event.{APP}.>"
    assert binding_key(subjects.listen_subscription(APP, "rabbitmq")) == f"ari.event.{APP}.#"
    cases = [
        ("ari.event.*.#", "ari.event.a", True),
        ("ari.event.*.#", "ari.event", False),
        ("ari.event.#", "ari.event", True),
        ("ari.event.#", "ari.event.a.b.c", True),
        ("ari.*.a", "ari.event.a", True),
        ("ari.*.a", "ari.event.b", False),
        ("ari.#.c", "ari.a.b.c", True),
        ("ari.#.c", "ari.c", True),
        ("ari.get", "ari.get.app", False),
        ("ari.get.app", "ari.get.app", True),
    ]
    for pattern, key, expected in cases:
        assert topic_matches(pattern, key) is expected, (pattern, key)


def test_queue_shapes() -> None:
    private = serve_private_queue()
    assert re.fullmatch(r"[0-9a-z]{26}-q", private.name)
    assert private.durable and private.arguments == {"x-expires": 30000} and not private.shared
    create = serve_group_queue("ariproxy", "ari.create.app")
    assert create.name == "ariproxy-ari.create.app"
    assert create.durable and create.arguments == {} and create.shared  # exactly Go's
    listen = listen_group_queue("app", "ari.event.app.>")
    assert listen.name == "ari-proxy-listen.app.ari.event.app.+.#"
    assert listen.shared and not listen.durable
    assert listen_group_queue("app", "ari.event.*.n1").name == "ari-proxy-listen.app.ari.event.+.n1"
    with pytest.raises(ProtocolError):  # AMQP allows few characters in a queue name
        serve_group_queue("ariproxy", "ari.create.appé")


# --- broker helpers -----------------------------------------------------------------------------


async def rabbitmqctl(*args: str) -> Any:
    """Run rabbitmqctl (without blocking the loop); JSON for the `list_*` commands."""
    json_output = args[0].startswith("list_")
    command = ["rabbitmqctl", "-q", *args, *(["--formatter", "json"] if json_output else [])]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {err.decode()}")
    return json.loads(out) if json_output else out.decode()


@pytest.fixture
async def vhost(rabbitmq_url: str) -> AsyncIterator[str]:
    """A fresh, empty virtual host for one test."""
    name = "ari-proxy-topology-" + secrets.token_hex(4)
    await rabbitmqctl("add_vhost", name)
    await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    await rabbitmqctl("delete_vhost", name)


@pytest.fixture
def url(rabbitmq_url: str, vhost: str) -> str:
    return str(URL(rabbitmq_url).with_path("/" + vhost))


def _text(value: Any) -> str:
    """A rabbitmqctl JSON value written as its tab-separated listing writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # an argument table: [[name, type, value], ...]
        return "[" + ",".join(f'{{"{name}",{val}}}' for name, _, val in value) + "]"
    return str(value)


def _norm(value: str) -> str:
    return ULID.sub("<ulid>", value)


COLUMNS = {
    "list_exchanges": ["name", "type", "durable", "auto_delete", "internal", "arguments"],
    "list_queues": [
        "name",
        "durable",
        "auto_delete",
        "exclusive",
        "arguments",
        "messages",
        "consumers",
    ],
    "list_bindings": [
        "source_name",
        "source_kind",
        "destination_name",
        "destination_kind",
        "routing_key",
        "arguments",
    ],
    "list_consumers": [
        "queue_name",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ],
}


async def listing(vhost: str, command: str) -> set[Row]:
    """The rows of a rabbitmqctl listing of `vhost`, as normalised strings."""
    columns = COLUMNS[command]
    rows = await rabbitmqctl(command, "-p", vhost, *columns)
    return {tuple(_norm(_text(row[c])) for c in columns) for row in rows}


def go_listing(snapshot: int, command: str) -> set[Row]:
    """The rows of a listing in the recorded Go topology, normalised like `listing`."""
    text = (VECTORS / "go-v5-rabbitmq-topology.txt").read_text()
    section = text.split(f"\n### {snapshot}.")[1].split("\n### ")[0]
    block = section.split(f"$ rabbitmqctl {command} ")[1]
    lines = block.split("\n")[1:]
    lines = lines[: lines.index("")]
    header, *rows = lines
    assert header.split("\t") == COLUMNS[command]
    return {tuple(_norm(cell) for cell in row.split("\t")) for row in rows}


async def make_server(url: str, **options: Any) -> RabbitTransport:
    """A transport serving what the Go server for (rtest, node) serves."""
    server = RabbitTransport(url, backoff=Backoff(initial=0.05, maximum=0.5), **options)
    await server.connect()

    async def answer(message: BusMessage) -> None:
        await server.reply(message, b'{"error":""}')

    for cls, subject in Subjects().server_subscriptions(APP, NODE):
        await server.serve(subject, answer, group="ariproxy" if cls == "create" else "")
    await server.on_ping("ari.ping", lambda message: None)
    return server


# --- the topology, against Go's --------------------------------------------------------------


async def test_topology_matches_go(url: str, vhost: str) -> None:
    async with asyncio.timeout(60):
        server = await make_server(url)
        client = RabbitTransport(url)
        try:
            await client.connect()
            await client.subscribe("ari.announce", lambda message: None)

            # Exchanges: the four of Go's snapshot 3, all declared by each side alone.
            ours = {
                row for row in await listing(vhost, "list_exchanges") if row[0].startswith("ari.")
            }
            assert ours == {
                row for row in go_listing(3, "list_exchanges") if row[0].startswith("ari.")
            }
            assert {row[0] for row in ours} == {exchange.name for exchange in EXCHANGES}

            # Queues, bindings and consumers: identical to Go's, but for Go's per-app event
            # queue `rtest` (Go defect 33), which we replace with private queues.
            def not_go_events(rows: set[Row]) -> set[Row]:
                return {row for row in rows if APP not in (row[0], row[2] if len(row) > 2 else "")}

            assert await listing(vhost, "list_queues") == not_go_events(
                go_listing(3, "list_queues")
            )
            assert await listing(vhost, "list_bindings") == not_go_events(
                go_listing(3, "list_bindings")
            )
            consumers = await listing(vhost, "list_consumers")
            go_consumers = {row for row in go_listing(3, "list_consumers") if row[0] != APP}

            def without_acks(rows: set[Row]) -> set[Row]:
                return {row[:2] + row[4:] for row in rows}

            assert without_acks(consumers) == without_acks(go_consumers)
            # How a consumer acks is its own business, invisible to peers: Go acks every
            # consumer by hand; we ack only on the queues shared with other servers, where a
            # prefetch bounds what we hold back (Go: none), and consume private ones without
            # acks (_rabbitmq_subscriptions).
            assert {row[2] for row in go_consumers} == {"true"}
            assert {row[3] for row in go_consumers} == {"0"}
            acks = {(row[0].startswith("ariproxy-"), row[2], row[3]) for row in consumers}
            assert {(shared, acked) for shared, acked, _ in acks} == {
                (True, "true"),
                (False, "false"),
            }
            assert {prefetch for shared, _, prefetch in acks if shared} == {"256"}

            # Our event queues, which share nothing with Go's.
            await client.subscribe(f"ari.event.{APP}.#", lambda message: None)
            await client.subscribe(f"ari.event.{APP}.>", lambda message: None, group=APP)
            queues = await listing(vhost, "list_queues")
            new = queues - not_go_events(go_listing(3, "list_queues"))
            generated = {row for row in new if row[0].startswith("amq.gen-")}
            assert {row[1:] for row in generated} == {
                ("false", "true", "true", '[{"x-message-ttl",30000}]', "0", "1")
            }
            assert new - generated == {
                (
                    f"ari-proxy-listen.{APP}.ari.event.{APP}.+.#",
                    "false",
                    "false",
                    "false",
                    '[{"x-expires",30000},{"x-message-ttl",30000}]',
                    "0",
                    "1",
                )
            }
            bindings = await listing(vhost, "list_bindings")
            (queue,) = (row[0] for row in generated)
            assert ("ari.event", "exchange", queue, "queue", f"ari.event.{APP}.#", "[]") in bindings
            listen = (
                "ari.event",
                "exchange",
                f"ari-proxy-listen.{APP}.ari.event.{APP}.+.#",
                "queue",
            )
            assert (*listen, f"ari.event.{APP}.*.#", "[]") in bindings
        finally:
            await client.close()
            await server.close()

        # Closed: our private queues are deleted at once (Go's expire 30 s later); the shared,
        # durable create queues and the exchanges stay, as with Go (snapshot 5), and so does
        # the listen queue until its x-expires (other members may still use it).
        names = {row[0] for row in await listing(vhost, "list_queues")}
        creates = {f"ariproxy-ari.create{s}" for s in ("", f".{APP}", f".{APP}.{NODE}")}
        assert names == {*creates, f"ari-proxy-listen.{APP}.ari.event.{APP}.+.#"}
        assert await listing(vhost, "list_consumers") == set()


@pytest.mark.parametrize("side", ["server", "client"])
async def test_either_side_declares_every_exchange(url: str, vhost: str, side: str) -> None:
    async with asyncio.timeout(30):
        transport = RabbitTransport(url)
        try:
            await transport.connect()
            if side == "server":
                await transport.serve(f"ari.get.{APP}", lambda message: None)
            else:
                await transport.subscribe(f"ari.event.{APP}.#", lambda message: None)
            exchanges = {row[0] for row in await listing(vhost, "list_exchanges")}
            assert {exchange.name for exchange in EXCHANGES} <= exchanges
            # A Go peer started next publishes to each of them; none is missing (Go defect 37:
            # a publish to an undeclared exchange would close its channel with NOT_FOUND).
            async with aiormq.connect(url) as conn:
                channel = await conn.channel(publisher_confirms=True)
                for exchange in EXCHANGES:
                    await channel.basic_publish(
                        b"{}",
                        exchange=exchange.name,
                        routing_key=f"ari.event.{APP}.n1",
                        properties=Basic.Properties(
                            content_type="application/json", delivery_mode=1
                        ),
                    )
                assert not channel.is_closed
        finally:
            await transport.close()


@pytest.mark.parametrize("first", ["go", "ours"])
async def test_go_and_we_declare_the_same_shared_objects(url: str, first: str) -> None:
    async with asyncio.timeout(30):

        async def go_declares() -> None:
            # What the Go server declares for its create subscription, with Go's properties.
            async with aiormq.connect(url) as conn:
                channel = await conn.channel()
                for exchange in EXCHANGES:
                    await channel.exchange_declare(
                        exchange.name, exchange_type=exchange.type, durable=True
                    )
                queue = f"ariproxy-ari.create.{APP}"
                await channel.queue_declare(queue, durable=True)
                await channel.queue_bind(queue, "ari.request", routing_key=f"ari.create.{APP}")
                assert not channel.is_closed  # no PRECONDITION_FAILED

        server = RabbitTransport(url)
        client = RabbitTransport(url)
        try:
            if first == "go":
                await go_declares()
            await server.connect()
            await client.connect()

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"ok")

            await server.serve(f"ari.create.{APP}", answer, group="ariproxy")
            if first == "ours":
                await go_declares()
            assert await client.request(f"ari.create.{APP}", b"{}", timeout=3) == b"ok"
        finally:
            await client.close()
            await server.close()


async def test_stale_creates_expire_instead_of_running_later(url: str, vhost: str) -> None:
    """Go defect 35: a create sent while no server consumes the shared durable queue must not
    be run when a server comes back minutes later."""
    async with asyncio.timeout(30):
        queue = f"ariproxy-ari.create.{APP}"
        async with aiormq.connect(url) as conn:  # a Go server that has gone away
            channel = await conn.channel()
            await channel.exchange_declare("ari.request", exchange_type="topic", durable=True)
            await channel.queue_declare(queue, durable=True)
            await channel.queue_bind(queue, "ari.request", routing_key=f"ari.create.{APP}")
        client = RabbitTransport(url)
        try:
            await client.connect()
            with pytest.raises(RequestTimeout):
                await client.request(f"ari.create.{APP}", b'{"kind":"ChannelCreate"}', timeout=0.3)
            await asyncio.sleep(0.5)
            async with aiormq.connect(url) as conn:  # a server starting now finds nothing
                channel = await conn.channel()
                got = await channel.basic_get(queue, no_ack=True)
                assert isinstance(got.delivery, Basic.GetEmpty)
        finally:
            await client.close()
        # Without the per-message TTL (what Go clients send), the request would have waited.
        async with aiormq.connect(url) as conn:
            channel = await conn.channel()
            await channel.basic_publish(
                b"go", exchange="ari.request", routing_key=f"ari.create.{APP}"
            )
            await asyncio.sleep(0.5)
            got = await channel.basic_get(queue, no_ack=True)
            assert got.body == b"go"


async def test_topology_is_declared_again_after_a_cut(
    url: str, vhost: str, rabbitmq_url: str
) -> None:
    async with asyncio.timeout(60):
        broker = URL(rabbitmq_url)
        proxy = TcpProxy(broker.host or "127.0.0.1", broker.port or 5672)
        await proxy.start()
        proxied = str(URL(url).with_host(proxy.host).with_port(proxy.port))
        server = await make_server(proxied)
        client = RabbitTransport(proxied, backoff=Backoff(initial=0.05, maximum=0.5))
        try:
            await client.connect()
            await client.subscribe("ari.announce", lambda message: None)
            await client.subscribe(f"ari.event.{APP}.#", lambda message: None)
            before = {
                command: await listing(vhost, command)
                for command in ("list_queues", "list_bindings", "list_consumers")
            }
            await proxy.cut()
            # The broker sees the connections go: consumers gone, the exclusive queue too.
            async with asyncio.timeout(10):
                while await listing(vhost, "list_consumers") != set():
                    await asyncio.sleep(0.05)
            await proxy.restore()
            for transport in (server, client):
                async with asyncio.timeout(10):
                    while transport.state is not BusState.CONNECTED:
                        await asyncio.sleep(0.01)

            def stable(command: str, rows: set[Row]) -> set[Row]:
                if command == "list_consumers":  # new consumer tags, same shape
                    rows = {(r[0], *r[2:]) for r in rows}
                # The broker-named queue has a new name.
                return {
                    tuple("amq.gen" if c.startswith("amq.gen-") else c for c in r) for r in rows
                }

            for command, rows in before.items():
                # CONNECTED is reported once everything is restored; the broker's listings
                # may take a moment to show it.
                deadline = time.monotonic() + 10
                while (after := stable(command, await listing(vhost, command))) != stable(
                    command, rows
                ) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert after == stable(command, rows), command
            assert server.gaps == client.gaps == 1
        finally:
            await client.close()
            await server.close()
            await proxy.close()


async def test_subjects_outside_the_protocol_still_route_by_intent(url: str) -> None:
    async with asyncio.timeout(30):
        server, client = RabbitTransport(url, prefix="pbx."), RabbitTransport(url, prefix="pbx.")
        try:
            await server.connect()
            await client.connect()

            async def answer(message: BusMessage) -> None:
                await server.reply(message, b"ok:" + message.subject.encode())

            await server.serve("custom.thing", answer)
            assert await client.request("custom.thing", b"", timeout=3) == b"ok:custom.thing"
            with pytest.raises(ProtocolError):
                await client.request("custom.*", b"", timeout=3)
        finally:
            await client.close()
            await server.close()


async def test_a_wrong_exchange_declaration_is_not_fatal(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An exchange someone declared with other properties makes each connection attempt fail
    (the broker refuses our declaration); the transport keeps retrying and says why, and
    connects by itself once the exchange is right."""
    async with asyncio.timeout(30):
        async with aiormq.connect(url) as conn:
            channel = await conn.channel()
            await channel.exchange_declare("ari.event", exchange_type="fanout", durable=True)
        transport = RabbitTransport(url, backoff=Backoff(initial=0.05, maximum=0.1))
        try:
            connecting = asyncio.ensure_future(transport.connect())
            await asyncio.sleep(0.5)
            assert not connecting.done() and transport.state is BusState.CONNECTING
            assert "PRECONDITION_FAILED" in caplog.text
            async with aiormq.connect(url) as conn:
                channel = await conn.channel()
                await channel.exchange_delete("ari.event")
            await connecting
            assert transport.state is BusState.CONNECTED
        finally:
            await transport.close()
