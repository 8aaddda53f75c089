"""Our proxy client against the real Go server: Go's reply shapes and error strings.

The conformance scenarios (tests/conformance) run through the Go server as well; these add what
only a Go server says differently: data reshaped from Go's structs (`config`, `log`, keys
without ids), errors as bare strings without status, and kinds it does not know. Each must read
into the same result or exception as through our server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect
from ari_proxy.testing import GoServer, Instance

pytest_plugins = ["interop_fixtures"]
pytestmark = pytest.mark.interop(client="ours", server="go")


@pytest_asyncio.fixture
async def client(go_server: GoServer, bus_url: str, app_name: str) -> AsyncIterator[ProxyClient]:
    async with proxy_connect(app_name, bus_url, timeout=5.0) as connected:
        yield connected


async def test_discovers_the_go_server(client: ProxyClient, go_server: GoServer) -> None:
    nodes = client.nodes()
    assert [(n.node, n.application) for n in nodes] == [(go_server.node, client.application)]
    assert "listen" not in nodes[0].features  # a Go server announces no feature of ours


async def test_reads_go_data_shapes(client: ProxyClient, asterisk: Instance) -> None:
    async with asyncio.timeout(20):
        info = await client.asterisk.info()
        assert info.system is not None and info.system.entity_id == asterisk.entity_id
        module = await client.asterisk.modules.handle("res_stasis.so").data()
        assert (module.name, module.status) == ("res_stasis.so", "Running")
        # Go's LogData says `levels`/`types` (always empty); the client gives ARI's LogChannel.
        channels = await client.asterisk.logging.list()
        assert channels
        log = await channels[0].data()
        assert log.channel == channels[0].id
        assert log.status in ("Enabled", "Disabled")
        # Go's ConfigData is `{"Fields": [...]}`; the client gives ARI's list of tuples.
        fields = await client.asterisk.config.get("res_pjsip", "endpoint", "sipp")
        assert ("context", "default") in {(f.attribute, f.value) for f in fields}
        name = f"INTEROP_{client.application.replace('-', '_').upper()}"
        await client.asterisk.set_variable(name, "go-42")
        assert await client.asterisk.get_variable(name) == "go-42"
        # An unset global variable: Go sends "data":{}.
        assert await client.asterisk.get_variable(name + "_UNSET") == ""
        app = await client.applications.handle(client.application).data()
        assert app.name == client.application


async def test_reads_go_lists(client: ProxyClient, go_server: GoServer) -> None:
    async with asyncio.timeout(20):
        modules = await client.asterisk.modules.list()
        assert "res_stasis.so" in {m.id for m in modules}
        assert all(m.node == go_server.node and m.key.app == client.application for m in modules)
        endpoints = await client.endpoints.list()
        assert "PJSIP/sipp" in {e.id for e in endpoints}
        bridge = await client.bridges.create(node=go_server.node)
        try:
            assert bridge.id in {b.id for b in await client.bridges.list()}
            assert (await bridge.data()).channels == []  # Go writes `"channels":null`
        finally:
            await bridge.destroy()


Call = Callable[[ari_proxy.Client], Awaitable[Any]]


@pytest.mark.parametrize(
    ("call", "error", "status"),
    [
        pytest.param(
            lambda c: c.asterisk.modules.handle("res_interop_nonexistent.so").data(),
            ari_proxy.NotFoundError,
            404,
            id="module-data",
        ),
        pytest.param(
            lambda c: c.asterisk.modules.handle("res_stasis.so").load(),
            ari_proxy.ConflictError,
            409,
            id="module-load",
        ),
        pytest.param(
            lambda c: c.sounds.data("interop-nonexistent"),
            ari_proxy.NotFoundError,
            404,
            id="sound-data",
        ),
        pytest.param(
            lambda c: c.applications.handle("interop-no-such-app").data(),
            ari_proxy.NotFoundError,
            404,
            id="application-data",
        ),
        pytest.param(
            lambda c: c.channels.handle("interop-missing").hangup(),
            ari_proxy.NotFoundError,
            404,
            id="channel-hangup",
        ),
        pytest.param(
            lambda c: c.asterisk.config.update("res_pjsip", "endpoint", "sipp", {"allow": "ulaw"}),
            ari_proxy.ForbiddenError,
            403,
            id="config-update",
        ),
    ],
)
async def test_maps_go_error_strings_to_the_same_exceptions(
    client: ProxyClient, call: Call, error: type[ari_proxy.AriError], status: int
) -> None:
    with pytest.raises(error) as info:
        await call(client)
    assert info.value.status == status
    assert f"Non-2XX response: {status}" in str(info.value)  # Go's own wording, kept


async def test_go_decode_failures_are_reported_not_crashed(client: ProxyClient) -> None:
    # This Asterisk has no mailboxes resource. Go decodes the 404 body into a list before it
    # looks at the status, and reports that decode error in plain text.
    with pytest.raises(ari_proxy.AriError) as info:
        await client.mailboxes.list()
    assert "failed to decode response" in str(info.value)


async def test_kinds_of_ours_are_not_implemented_there(
    client: ProxyClient, go_server: GoServer
) -> None:
    with pytest.raises(ari_proxy.UnknownKindError, match="Not implemented"):
        await client.asterisk.ping(node=go_server.node)
