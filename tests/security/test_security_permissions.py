"""Applications isolated by the bus's own permissions, with the permission sets of
docs/security.md, on a real nats-server.

Two applications share one bus and one proxy. Each application's clients hold credentials that
allow only their own application's subjects: they work normally (calls taken through
`listen()`, requests, events), and cannot read the other application's events, replies or
dialog events, send it requests, forge announcements or listen offers, or join the servers'
create queue.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiormq
import aiormq.abc
import aiormq.exceptions
import nats
import pytest
from nats.aio.client import Client as NatsClient

import ari_proxy
from ari_proxy import event_type
from ari_proxy.client import connect as proxy_connect
from ari_proxy.testing import (
    CallSource,
    Instance,
    Ledger,
    Taker,
    nats_server_binary,
    running_proxy,
    tcp_open,
    wait_until,
)

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "security" / "nats-server.conf"
APPS = ("billing", "support")
PASSWORDS = {"proxy": "proxy-pw", "billing": "billing-pw", "support": "support-pw"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def secured_nats() -> Iterator[int]:
    """A nats-server running docs/security/nats-server.conf (passwords and port replaced)."""
    port = _free_port()
    text = CONFIG.read_text().replace("127.0.0.1:4222", f"127.0.0.1:{port}")
    for user, password in PASSWORDS.items():
        text = text.replace(f"{user.upper()}_PASSWORD", password)
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "nats.conf"
        conf.write_text(text)
        process = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(200):  # bounded polling: the server opens its port within moments
                if tcp_open("127.0.0.1", port):
                    break
                if process.poll() is not None:
                    raise RuntimeError(process.stderr.read().decode() if process.stderr else "")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)
            if process.stderr is not None:
                process.stderr.close()


def url(port: int, user: str) -> str:
    return f"nats://{user}:{PASSWORDS[user]}@127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def raw(port: int, user: str) -> AsyncIterator[tuple[NatsClient, list[str]]]:
    """A plain nats-py connection as `user`, and the permission errors the server sent it."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    client = await nats.connect(url(port, user), error_cb=on_error, allow_reconnect=False)
    try:
        yield client, errors
    finally:
        await client.close()


@pytest.fixture
async def stack(asterisk: Instance, secured_nats: int) -> AsyncIterator[int]:
    """Our proxy serving both applications, as the `proxy` user."""
    async with running_proxy(asterisk, url(secured_nats, "proxy"), *APPS):
        yield secured_nats


async def test_each_application_works_with_its_own_permissions(
    asterisk: Instance, stack: int
) -> None:
    for app in APPS:
        ledger = Ledger()
        async with proxy_connect(app, url(stack, app), timeout=5.0) as client:
            await wait_until(lambda c=client: bool(c.nodes()), timeout=10)
            taker = Taker("instance", client, ledger, hold=0.2)
            await taker.start()
            async with CallSource(asterisk, app, ledger) as source:
                await source.place(2, 5.0)
                await wait_until(lambda led=ledger: len(led.ended) == 2, timeout=20)
            await taker.stop()
            assert ledger.never_taken == [] and not taker.errors
            # Every event of the calls reached the instance through its dialog.
            for channel in ledger.placed:
                assert "StasisEnd" in ledger.events[channel], ledger.events[channel]
            assert (await client.asterisk.info()).system is not None
            assert [h.id for h in await client.applications.list() if h.id == app] == [app]


async def test_one_application_cannot_reach_the_other(asterisk: Instance, stack: int) -> None:
    port = stack
    async with (
        raw(port, "billing") as (spy, errors),
        proxy_connect("support", url(port, "support"), timeout=5.0) as support,
    ):
        await wait_until(lambda: bool(support.nodes()), timeout=10)
        seen: list[str] = []

        async def record(msg: nats.aio.msg.Msg) -> None:
            seen.append(msg.subject)

        # Reading support's events, dialog events, replies and offers is refused...
        for subject in (
            "ari.event.support.>",
            "ari.dialogevent.support.>",
            "_INBOX.support.>",
            "ari.listen.support.*",
            "ari.event.>",
            "ari.dialogevent.>",
            "_INBOX.>",
        ):
            await spy.subscribe(subject, cb=record)
        # ... and so is joining the servers' create queue.
        await spy.subscribe("ari.create.support", queue="ariproxy", cb=record)
        await spy.flush()
        await wait_until(lambda: len(errors) >= 8, timeout=5)
        assert all("permissions violation" in e.lower() for e in errors), errors
        # Support works meanwhile, and billing sees nothing of it.
        async with support.subscribe("StasisStart", "StasisEnd") as events:
            channel = await support.channels.originate("Local/wait@default")
            assert event_type(await events.next(timeout=10)) == "StasisStart"
            await channel.hangup()
            assert event_type(await events.next(timeout=10)) == "StasisEnd"
        assert seen == []

        # Sending support requests, offers, announcements or presence is refused: the server
        # drops them, and nothing reaches support's proxy or clients.
        before = len(errors)
        for subject, body in (
            (f"ari.command.support.{support.nodes()[0].node}", b'{"kind":"ChannelHangup"}'),
            ("ari.create.support", b'{"kind":"BridgeCreate","key":{"app":"support"}}'),
            ("ari.listen.support.fake", b'{"type":"StasisStart"}'),
            ("ari.announce", b'{"node":"forged","application":"support"}'),
            ("ari.presence.proxy.support", b'{"role":"proxy","leaving":true}'),
            ("ari.event.support.forged", b'{"type":"StasisStart"}'),
        ):
            await spy.publish(subject, body)
        await spy.flush()
        await wait_until(lambda: len(errors) >= before + 6, timeout=5)
        assert [n.node for n in support.nodes()] != ["forged"]
        assert "forged" not in {n.node for n in support.all_nodes()}
        # Billing's own requests still work.
        async with proxy_connect("billing", url(port, "billing"), timeout=5.0) as billing:
            await wait_until(lambda: bool(billing.nodes()), timeout=10)
            assert (await billing.asterisk.info()).system is not None
            with pytest.raises(ari_proxy.AriProxyError):
                # A request for support on billing's subjects is refused by the server.
                await billing.channels.originate("Local/wait@default", app="support")


async def test_isolation_is_refused_without_the_servers_help(stack: int) -> None:
    """Without bus permissions, a request naming another application is still refused by the
    server (`proxy.isolate_applications`, on by default)."""
    port = stack
    async with proxy_connect("billing", url(port, "billing"), timeout=5.0) as billing:
        await wait_until(lambda: bool(billing.nodes()), timeout=10)
        with pytest.raises(ari_proxy.InvalidRequestError, match="support"):
            await billing.applications.handle("support").subscribe_to("channel:x")


# --- RabbitMQ: vhost and topic permissions ------------------------------------------------------

SCRIPT = CONFIG.parent / "rabbitmq-permissions.sh"


@pytest.fixture(scope="module")
def secured_vhost(rabbitmq_url: str) -> Iterator[str]:
    """A vhost with the users of docs/security/rabbitmq-permissions.sh: proxy, billing,
    support."""
    vhost = f"ari-security-{secrets.token_hex(3)}"
    subprocess.run([str(SCRIPT), "proxy", vhost, "proxy", PASSWORDS["proxy"]], check=True)
    for app in APPS:
        subprocess.run([str(SCRIPT), "app", vhost, app, app, PASSWORDS[app]], check=True)
    try:
        yield vhost
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


def amqp(vhost: str, user: str) -> str:
    return f"amqp://{user}:{PASSWORDS[user]}@127.0.0.1:5672/{vhost}"


async def test_rabbitmq_applications_work_and_stay_apart(
    asterisk: Instance, secured_vhost: str
) -> None:
    vhost = secured_vhost
    async with running_proxy(asterisk, amqp(vhost, "proxy"), *APPS):
        for app in APPS:
            ledger = Ledger()
            async with proxy_connect(app, amqp(vhost, app), timeout=5.0) as client:
                await wait_until(lambda c=client: bool(c.nodes()), timeout=10)
                taker = Taker("instance", client, ledger, hold=0.2)
                await taker.start()
                async with CallSource(asterisk, app, ledger) as source:
                    await source.place(2, 5.0)
                    await wait_until(lambda led=ledger: len(led.ended) == 2, timeout=20)
                await taker.stop()
                assert ledger.never_taken == [] and not taker.errors
        # billing, as an attacker with its own credentials and a plain AMQP client:
        refused = []
        connection = await aiormq.connect(amqp(vhost, "billing"))
        try:
            for attempt in (_bind_to_support, _publish_for_support, _consume_creates, _delete):
                channel = await connection.channel()
                try:
                    await attempt(channel)
                except aiormq.exceptions.ChannelAccessRefused as exc:
                    refused.append((attempt.__name__, str(exc)))
                else:
                    pytest.fail(f"{attempt.__name__} was allowed")
        finally:
            await connection.close()
        assert [name for name, _ in refused] == [
            "_bind_to_support",
            "_publish_for_support",
            "_consume_creates",
            "_delete",
        ]


async def _bind_to_support(channel: aiormq.abc.AbstractChannel) -> None:
    queue = await channel.queue_declare("", exclusive=True)
    await channel.queue_bind(queue.queue, "ari.event", routing_key="ari.event.support.#")


async def _publish_for_support(channel: aiormq.abc.AbstractChannel) -> None:
    await channel.basic_publish(
        b'{"kind":"ChannelHangup","key":{"id":"x"}}',
        exchange="ari.request",
        routing_key="ari.command.support",
    )
    await channel.basic_qos(prefetch_count=1)  # a round trip: the refusal arrives by then


async def _consume_creates(channel: aiormq.abc.AbstractChannel) -> None:
    await channel.basic_consume("ariproxy-ari.create.support", lambda message: None)


async def _delete(channel: aiormq.abc.AbstractChannel) -> None:
    await channel.exchange_delete("ari.event")
