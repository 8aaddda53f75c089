"""Adding a bus takes one module and one registry entry.

The toy backend (`toy_backend.py`) is registered here, by the one `register` call below, and
nowhere else. With that alone it passes the whole transport contract, and `bus.connect`,
`ari_proxy.connect`, the server's configuration and the server itself choose it for `toy://`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from bus_contract import NewTransport, TransportContract
from toy_backend import ToyTransport

import ari_proxy
from ari_proxy.bus import (
    Backend,
    BusMessage,
    BusState,
    backend_for,
    connect,
    expected_schemes,
    register,
    unregister,
)
from ari_proxy.client import ProxyClient
from ari_proxy.server import ConfigError, Server, ServerConfig

if TYPE_CHECKING:
    from conftest import Until


@pytest.fixture(scope="module", autouse=True)
def toy() -> Iterator[Backend]:
    """The toy backend, registered for this module's tests."""
    backend = register(Backend("Toy", ("toy",), ToyTransport))
    try:
        yield backend
    finally:
        unregister(backend)


class TestToyTransport(TransportContract):
    """The transport contract, on a toy bus of each test's own, chosen by its URL."""

    @pytest.fixture
    def new_transport(self, topic: str) -> NewTransport:
        return lambda **options: connect(f"toy://{topic}", **options)


def test_bus_connect_chooses_it(toy: Backend) -> None:
    transport = connect(["toy://one", "TOY://one"], prefix="x.", name="n")
    assert isinstance(transport, ToyTransport)
    assert backend_for("toy://one") is toy
    assert expected_schemes().endswith("or toy://")
    with pytest.raises(ValueError, match="mix NATS and Toy"):
        connect(["toy://one", "nats://127.0.0.1:4222"])
    with pytest.raises(ValueError, match="already selects Toy"):
        register(Backend("Other", ("toy",), ToyTransport))


async def test_ari_proxy_connect_chooses_it(topic: str, until: Until) -> None:
    # A stand-in proxy on the same toy bus answers pings with its announcement.
    proxy = connect(f"toy://{topic}")
    await proxy.connect()
    try:

        async def announce(message: BusMessage) -> None:
            await proxy.publish("ari.announce", b'{"node":"n1","application":"app"}')

        await proxy.on_ping("ari.ping", announce)
        async with ari_proxy.connect(f"toy://{topic}", application="app") as client:
            assert isinstance(client, ProxyClient)
            assert client.bus_state is BusState.CONNECTED
            await client.refresh()
            await until(lambda: [node.node for node in client.nodes()] == ["n1"])
    finally:
        await proxy.close()


async def test_the_server_configuration_and_the_server_choose_it() -> None:
    base = {"applications": ("app",), "ari_username": "u", "ari_password": "p"}
    config = ServerConfig(**base, bus_urls=("toy://server",))  # type: ignore[arg-type]
    server = Server(config)
    try:
        assert isinstance(server.bus, ToyTransport)
        assert server.bus.max_payload is None
        assert server._file_limit() == config.max_file_size
    finally:
        await server.http.close()
    # The largest file a reply carries follows the bus's payload limit (base64 and JSON).
    limited = Server(config, bus=ToyTransport(["toy://server"], max_payload=100_000))
    try:
        assert limited._file_limit() == (100_000 - 1024) * 3 // 4
    finally:
        await limited.http.close()
    # What the toy backend does not take is refused, naming the backends that do.
    with pytest.raises(ConfigError, match=r"messagebus\.token applies to NATS only, not to toy://"):
        ServerConfig(**base, bus_urls=("toy://server",), bus_token="t")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"messagebus\.user applies to NATS and RabbitMQ only"):
        ServerConfig(**base, bus_urls=("toy://server",), bus_user="u")  # type: ignore[arg-type]
