"""ARI over real TLS: the sandbox Asterisk serving HTTPS and WSS with a certificate this run's
CA signed (`make_spec(..., tls=certs)`).

The native client runs a request and a call's events over HTTPS and WSS with the CA given,
its requests on their own HTTPS connections and on the WSS events socket alike; the proxy
server does the same behind the bus for a proxy client. Given another CA, or none (the
system's CAs), the client and the `ari-proxy` command refuse Asterisk at once with a
`CertificateError` that says what to set and shows no secret; an `http://` URL to the TLS
port is never served in the clear.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest

import ari_proxy
import ari_proxy.ari as ari
from ari_proxy import CertificateError, ConnectError
from ari_proxy.api import event_type
from ari_proxy.testing import Certificates, Instance, make_spec, running_proxy, start, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_asterisk(certs: Certificates) -> Iterator[Instance]:
    """An Asterisk whose ARI also listens for HTTPS and WSS, with `certs`' server certificate."""
    instance = start(make_spec(f"pytest-{os.getpid()}-tls", tls=certs))
    try:
        yield instance
    finally:
        stop(instance.name)


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_native_client_over_https_and_wss(
    tls_asterisk: Instance, certs: Certificates, app_name: str, transport: str
) -> None:
    async with (
        ari.connect(
            tls_asterisk.https_url,
            tls_asterisk.username,
            tls_asterisk.password,
            app_name,
            transport=transport,
            tls_ca_file=certs.ca,
        ) as client,
        asyncio.timeout(30),
    ):
        stream = client._backend.stream
        assert isinstance(stream, ari.EventStream) and stream.url.scheme == "wss"
        rest = client._backend.websocket_rest
        sent = rest.sent if rest is not None else 0
        info = await client.asterisk.info()
        assert info.system is not None and info.system.entity_id == tls_asterisk.entity_id
        staged = await client.channels.stage_originate("Local/wait@default")
        async with staged.subscribe("StasisStart", "StasisEnd") as events:
            channel = await staged.execute()
            assert event_type(await events.next(timeout=10)) == "StasisStart"
            await channel.hangup()
            assert event_type(await events.next(timeout=10)) == "StasisEnd"
        if transport == "websocket":  # info, originate and hangup travelled on the WSS socket
            assert rest is not None and rest.enabled and rest.sent - sent == 3
        else:
            assert rest is None


async def test_the_top_level_connect_takes_the_tls_files(
    tls_asterisk: Instance, certs: Certificates, app_name: str
) -> None:
    async with ari_proxy.connect(
        tls_asterisk.https_url,
        application=app_name,
        username=tls_asterisk.username,
        password=tls_asterisk.password,
        tls_ca_file=certs.ca,
    ) as client:
        assert (await client.asterisk.info()).system is not None


@pytest.mark.parametrize("ca", ["other", "system"])
async def test_an_untrusted_asterisk_is_refused_at_once(
    tls_asterisk: Instance, certs: Certificates, app_name: str, ca: str
) -> None:
    given = {"tls_ca_file": certs.other_ca} if ca == "other" else {}
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CertificateError) as refused:
        await ari.connect(
            tls_asterisk.https_url,
            tls_asterisk.username,
            tls_asterisk.password,
            app_name,
            connect_timeout=30,
            **given,
        )
    assert loop.time() - started < 10  # refused, not retried until the timeout
    text = str(refused.value)
    assert "Asterisk's TLS certificate was not trusted" in text and "tls_ca_file" in text, text
    assert f"127.0.0.1:{tls_asterisk.spec.https_port}" in text, text  # names the URL
    assert tls_asterisk.password not in text


async def test_a_plain_url_to_the_tls_port_is_never_served_in_the_clear(
    tls_asterisk: Instance, app_name: str
) -> None:
    plain = tls_asterisk.https_url.replace("https://", "http://")
    with pytest.raises(ConnectError) as refused:
        await ari.connect(
            plain, tls_asterisk.username, tls_asterisk.password, app_name, connect_timeout=5
        )
    assert not isinstance(refused.value, CertificateError)  # no TLS was ever attempted
    assert "if this port serves TLS, use an https:// URL" in str(refused.value)
    assert tls_asterisk.password not in str(refused.value)


async def test_tls_files_without_a_tls_url_are_refused(
    tls_asterisk: Instance, certs: Certificates, app_name: str
) -> None:
    with pytest.raises(ValueError, match="need an https:// or wss:// URL"):
        ari.connect(
            tls_asterisk.http_url,
            tls_asterisk.username,
            tls_asterisk.password,
            app_name,
            tls_ca_file=certs.ca,
        )


async def test_the_server_over_https_and_wss(
    tls_asterisk: Instance, certs: Certificates, nats_url: str, app_name: str
) -> None:
    async with (
        running_proxy(
            tls_asterisk,
            nats_url,
            app_name,
            ari_http_url=tls_asterisk.https_url,
            ari_websocket_url=tls_asterisk.wss_url,
            ari_tls_ca_file=certs.ca,
        ) as server,
        ari_proxy.connect(nats_url, application=app_name) as client,
        asyncio.timeout(30),
    ):
        assert isinstance(server.stream, ari.EventStream) and server.stream.url.scheme == "wss"
        info = await client.asterisk.info()
        assert info.system is not None and info.system.entity_id == tls_asterisk.entity_id
        async with client.subscribe("StasisStart") as started:
            channel = await client.channels.originate("Local/wait@default")
            event = await started.next(timeout=10)
            assert event.channel.id == channel.id  # type: ignore[attr-defined]
            await channel.hangup()


@pytest.mark.parametrize("ca", ["other", "system"])
async def test_the_command_ends_with_a_configuration_error(
    tls_asterisk: Instance, certs: Certificates, nats_url: str, app_name: str, ca: str
) -> None:
    given = ["--ari.tls_ca_file", certs.other_ca] if ca == "other" else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ari_proxy.server",
        "--ari.application",
        app_name,
        "--ari.username",
        tls_asterisk.username,
        "--ari.password",
        tls_asterisk.password,
        "--ari.http_url",
        tls_asterisk.https_url,
        "--messagebus.url",
        nats_url,
        *given,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # it kept retrying: kill it, the assertion below says so
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 2, text
    assert "Asterisk's TLS certificate was not trusted" in text, text
    assert "ari.tls_ca_file" in text, text
    assert tls_asterisk.password not in text
