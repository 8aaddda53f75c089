"""The bus over real TLS, with a CA this run makes: NATS (`tls://`) and RabbitMQ (`amqps://`).

Server and client reach each other through a TLS-only broker with the CA given, and a request
runs through to the real Asterisk. Given another CA, or none (the system's CAs), both refuse
the broker at once with a `CertificateError` that says what to set; a plain URL to a TLS-only
broker is never quietly served without TLS; a NATS server that requires client certificates
takes ours and refuses a client without one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy import CertificateError, ConnectError
from ari_proxy.testing import (
    Certificates,
    Instance,
    TlsNats,
    TlsRabbitMQ,
    proxy_config,
    running_proxy,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_nats(certs: Certificates) -> Iterator[TlsNats]:
    with TlsNats(certs) as nats:
        yield nats


@pytest.fixture(scope="module")
def tls_rabbitmq(certs: Certificates) -> Iterator[TlsRabbitMQ]:
    with TlsRabbitMQ(certs) as rabbitmq:
        yield rabbitmq


@pytest_asyncio.fixture(params=["nats", "rabbitmq"])
async def tls_bus(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The URL of a TLS-only broker of each kind."""
    broker = request.getfixturevalue(f"tls_{request.param}")
    yield broker.url


async def test_server_and_client_over_tls(
    asterisk: Instance, tls_bus: str, certs: Certificates, app_name: str
) -> None:
    async with (
        running_proxy(asterisk, tls_bus, app_name, bus_tls_ca_file=certs.ca),
        ari_proxy.connect(tls_bus, application=app_name, tls_ca_file=certs.ca) as client,
    ):
        info = await client.asterisk.info()
        assert info.system is not None and info.system.entity_id == asterisk.entity_id


@pytest.mark.parametrize("ca", ["other", "system"])
async def test_an_untrusted_broker_is_refused_at_once(
    tls_bus: str, certs: Certificates, app_name: str, ca: str
) -> None:
    given = {"tls_ca_file": certs.other_ca} if ca == "other" else {}
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CertificateError) as refused:
        await ari_proxy.connect(
            tls_bus, application=app_name, connect_timeout=30, name="tls-test", **given
        )
    assert loop.time() - started < 10  # refused, not retried until the timeout
    text = str(refused.value)
    assert "TLS certificate was not trusted" in text and "tls_ca_file" in text, text
    assert "guest:guest" not in text  # the URL's password is redacted


async def test_a_plain_url_to_a_tls_only_broker_is_never_served_in_the_clear(
    tls_bus: str, app_name: str
) -> None:
    plain = tls_bus.replace("tls://", "nats://").replace("amqps://", "amqp://")
    with pytest.raises(ConnectError) as refused:
        await ari_proxy.connect(plain, application=app_name, connect_timeout=3)
    # NATS upgrades to TLS because the server requires it, and still checks the certificate
    # (with the system's CAs: refused); AMQP has no upgrade, and a TLS port does not speak it.
    assert isinstance(refused.value, CertificateError) == plain.startswith("nats://")


async def test_nats_client_certificates(certs: Certificates, app_name: str) -> None:
    with TlsNats(certs, verify=True) as nats:
        async with ari_proxy.connect(
            nats.url,
            application=app_name,
            tls_ca_file=certs.ca,
            tls_cert_file=certs.client_cert,
            tls_key_file=certs.client_key,
        ) as client:
            assert client.nodes() == []  # connected: nobody serves this application here
        with pytest.raises(ConnectError) as refused:
            await ari_proxy.connect(
                nats.url, application=app_name, tls_ca_file=certs.ca, connect_timeout=3
            )
        assert "within 3s" in str(refused.value), refused.value


async def test_the_command_ends_with_a_configuration_error(
    asterisk: Instance, tls_bus: str, certs: Certificates, app_name: str
) -> None:
    config = proxy_config(asterisk, tls_bus, app_name, bus_tls_ca_file=certs.other_ca)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ari_proxy.server",
        "--ari.application",
        app_name,
        "--ari.username",
        config.ari_username,
        "--ari.password",
        config.ari_password,
        "--ari.http_url",
        config.ari_http_url,
        "--messagebus.url",
        tls_bus,
        "--messagebus.tls_ca_file",
        certs.other_ca,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # it kept retrying: kill it, the assertion below says so
            process.kill()
            await process.wait()
    assert process.returncode == 2, output.decode()
    assert b"TLS certificate was not trusted" in output, output.decode()
    assert config.ari_password.encode() not in output
