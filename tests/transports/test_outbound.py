"""The server in outbound mode (Asterisk dials it), beyond the conformance flow: the
credentials Asterisk presents are checked, requests can go over HTTP instead of the socket,
and a dropped socket is not a gap, because Asterisk holds the events for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

import ari_proxy
import ari_proxy.ari
from ari_proxy.ari import OutboundEventStream
from ari_proxy.server import Server
from ari_proxy.testing import (
    outbound_config,
    outbound_spec,
    running_outbound,
    start,
    stop,
    wait_until,
)

pytestmark = pytest.mark.integration


def _name(app: str, what: str) -> str:
    return f"pytest-{os.getpid()}-{what}-{app.removeprefix('t-')}"


async def test_wrong_credentials_are_refused_before_the_upgrade(
    nats_url: str, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = outbound_spec(_name(app_name, "cred"), app_name)
    wrong = "not-" + spec.outbound_password
    server = Server(outbound_config(spec, nats_url, ari_listen_password=wrong))
    starting = asyncio.ensure_future(server.start(ari_timeout=60))
    inst = await asyncio.to_thread(start, spec)
    try:
        stream = server.stream
        assert isinstance(stream, OutboundEventStream)
        with caplog.at_level(logging.INFO):
            await wait_until(lambda: stream.refused >= 2, timeout=20)
        assert not server.ari_connected and not starting.done()
        assert "wrong credentials" in caplog.text
        assert spec.outbound_password not in caplog.text and wrong not in caplog.text
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await asyncio.to_thread(stop, inst.name)
        await server.stop()


async def test_requests_over_http_with_events_from_the_outbound_socket(
    nats_url: str, app_name: str
) -> None:
    async with running_outbound(
        _name(app_name, "http"), nats_url, app_name, ari_transport="http"
    ) as (
        _,
        server,
    ):
        assert server.websocket_rest is None
        async with ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client:
            staged = await client.channels.stage_originate("Local/wait@default")
            async with staged.subscribe("StasisStart") as events:
                channel = await staged.execute()
                await events.next(timeout=10)
            await channel.hangup()


async def test_a_dropped_socket_is_no_gap_asterisk_holds_the_events(
    nats_url: str, app_name: str
) -> None:
    async with running_outbound(_name(app_name, "drop"), nats_url, app_name) as (inst, server):
        stream = server.stream
        assert isinstance(stream, OutboundEventStream)
        async with ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client:
            async with client.subscribe("ChannelUserevent", "ConnectionGap") as events:
                ws = stream._ws
                assert ws is not None
                await ws.close()  # Asterisk dials again at once (reconnect_interval)
                async with ari_proxy.ari.connect(
                    inst.http_url, inst.username, inst.password, app_name + "-source"
                ) as source:
                    # Raised right away: before, during or after the new connection.
                    for i in range(5):
                        await source.events.user_event(
                            "mark", application=app_name, variables={"i": str(i)}
                        )
                got = [await events.next(timeout=15) for _ in range(5)]
                assert [ari_proxy.event_type(e) for e in got] == ["ChannelUserevent"] * 5
                assert [e.userevent["i"] for e in got] == [str(i) for i in range(5)]  # type: ignore[attr-defined]
        assert server.counters.events_dropped == 0


async def test_asterisk_dials_wss_with_the_listener_s_certificate(
    nats_url: str, app_name: str, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await openssl.wait() == 0
    async with running_outbound(
        _name(app_name, "tls"),
        nats_url,
        app_name,
        ari_listen_tls_cert_file=str(cert),
        ari_listen_tls_key_file=str(key),
    ) as (inst, server):
        assert inst.spec.outbound_url.startswith("wss://")
        assert server.ari_connected
        async with ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client:
            assert (await client.asterisk.ping()).asterisk_id == inst.entity_id


def test_outbound_spec_leaves_the_default_configuration_alone() -> None:
    """An instance without an outbound URL gets the configuration every other test relies on."""
    from ari_proxy.testing._configs import render_configs

    plain = outbound_spec("plain", "app")
    plain = replace(plain, outbound_url="", outbound_apps="")
    files = render_configs(plain, "/usr/lib/asterisk/modules")
    assert "websocket_client.conf" not in files
    assert "outbound_websocket" not in files["ari.conf"]
    dialled = render_configs(outbound_spec("dialled", "a1", "a2"), "/usr/lib/asterisk/modules")
    assert "type = outbound_websocket" in dialled["ari.conf"]
    assert "apps = a1,a2" in dialled["ari.conf"]
    assert "connection_type = persistent" in dialled["websocket_client.conf"]
    assert "protocols = ari" in dialled["websocket_client.conf"]
