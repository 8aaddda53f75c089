"""The Asterisk sandbox and bus services are real and independent."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import aio_pika
import aiohttp
import nats
import pytest

from ari_proxy.testing import (
    Instance,
    SandboxError,
    make_spec,
    root_is_valid,
    running,
    sipp_calls,
    start,
    stop,
)
from ari_proxy.testing._asterisk import _alive


def _auth(inst: Instance) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(inst.username, inst.password)}


def test_cached_root_is_valid(asterisk: Instance) -> None:
    assert root_is_valid(asterisk.root)


def test_an_empty_directory_is_not_a_valid_root(tmp_path: Path) -> None:
    assert not root_is_valid(tmp_path)
    (tmp_path / ".ari-proxy-sandbox").write_text("suite=sid something else\n")
    assert not root_is_valid(tmp_path)


def test_instance_names_are_checked() -> None:
    with pytest.raises(SandboxError):
        make_spec("../etc")
    with pytest.raises(SandboxError):
        make_spec("Upper Case")


def test_only_an_instance_made_with_tls_serves_https(asterisk: Instance) -> None:
    """The default instance's http.conf has no TLS listener (tests/tls starts one that has)."""
    http_conf = asterisk.host_path(f"{asterisk.spec.etc_dir}/http.conf").read_text()
    assert "tls" not in http_conf and f"bindport = {asterisk.spec.http_port}" in http_conf
    with pytest.raises(SandboxError, match="no TLS listener"):
        _ = asterisk.https_url


def test_two_instances_have_their_own_entity_ids(asterisk: Instance, asterisk2: Instance) -> None:
    info1 = asterisk.get("/asterisk/info")
    info2 = asterisk2.get("/asterisk/info")
    assert isinstance(info1, dict) and isinstance(info2, dict)
    assert info1["system"]["entity_id"] == asterisk.entity_id
    assert info2["system"]["entity_id"] == asterisk2.entity_id
    assert asterisk.entity_id != asterisk2.entity_id
    assert info1["system"]["version"].startswith("22.")
    assert asterisk.spec.http_port != asterisk2.spec.http_port


def test_wrong_password_is_refused(asterisk: Instance) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        asterisk.http_url + "/asterisk/ping",
        headers={"Authorization": aiohttp.encode_basic_auth(asterisk.username, "wrong")},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 401
    info.value.close()


async def test_local_channel_reaches_stasis(asterisk: Instance, app_name: str) -> None:
    async with aiohttp.ClientSession(headers=_auth(asterisk)) as http:
        async with http.ws_connect(f"{asterisk.ws_url}?app={app_name}") as ws:
            resp = await http.post(
                f"{asterisk.http_url}/channels",
                params={
                    "endpoint": f"Local/stasis-{app_name}@default",
                    "extension": "wait",
                    "context": "default",
                },
            )
            assert resp.status == 200
            created = await resp.json()
            msg = await ws.receive(timeout=10)
            event = json.loads(msg.data)
            assert event["type"] == "StasisStart"
            assert event["application"] == app_name
            assert event["asterisk_id"] == asterisk.entity_id
            assert event["channel"]["name"].startswith(f"Local/stasis-{app_name}@default")
            hangup = await http.delete(f"{asterisk.http_url}/channels/{created['id']}")
            assert hangup.status == 204


async def test_sip_call_reaches_stasis(asterisk: Instance, app_name: str) -> None:
    seen: list[str] = []
    async with aiohttp.ClientSession(headers=_auth(asterisk)) as http:
        async with http.ws_connect(f"{asterisk.ws_url}?app={app_name}") as ws:
            call = asyncio.create_task(sipp_calls(asterisk, f"stasis-{app_name}", calls=2))
            while len(seen) < 2:
                event = json.loads((await ws.receive(timeout=15)).data)
                if event["type"] == "StasisStart":
                    channel = event["channel"]
                    seen.append(channel["name"])
                    url = f"{asterisk.http_url}/channels/{channel['id']}"
                    assert (await http.post(url + "/answer")).status == 204
                    assert (await http.delete(url)).status == 204
            result = await call
    assert all(name.startswith("PJSIP/sipp-") for name in seen)
    assert (result.successful, result.failed, result.returncode) == (2, 0, 0), result.output


def test_stop_leaves_nothing_behind(asterisk: Instance) -> None:
    inst = start(make_spec(f"pytest-{os.getpid()}-x"))
    assert inst.name in {r.name for r in running()}
    assert stop(inst.name)
    assert not _alive(inst.pid)
    assert inst.name not in {r.name for r in running()}
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", inst.spec.http_port)) != 0
    assert not stop(inst.name)


async def test_nats_publish_subscribe_round_trip(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.subscribe("ari-proxy.test.roundtrip")
        await nc.publish("ari-proxy.test.roundtrip", b"hello")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"hello"
    finally:
        await nc.close()


async def test_rabbitmq_publish_consume_round_trip(rabbitmq_url: str) -> None:
    conn = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hello"), routing_key=queue.name)
        msg = await queue.get(timeout=5, fail=True)
        assert msg is not None
        assert msg.body == b"hello"
        await msg.ack()
    finally:
        await conn.close()


def test_nats_cluster_of_three(nats_cluster) -> None:  # type: ignore[no-untyped-def]
    assert len(nats_cluster.urls) == 3

    async def check() -> None:
        # A message published on one node reaches a subscriber on another.
        a = await nats.connect(nats_cluster.urls[0])
        b = await nats.connect(nats_cluster.urls[2])
        try:
            sub = await b.subscribe("cluster.check")
            await b.flush()
            for _ in range(50):  # routes take a moment to form
                await a.publish("cluster.check", b"x")
                await a.flush()
                try:
                    await sub.next_msg(timeout=0.2)
                    return
                except nats.errors.TimeoutError:
                    continue
            raise AssertionError("no message crossed the cluster")
        finally:
            await a.close()
            await b.close()

    asyncio.run(check())
