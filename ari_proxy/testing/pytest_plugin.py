"""pytest fixtures over the real components: Asterisk sandbox instances and the buses.

Enable with `pytest_plugins = ["ari_proxy.testing.pytest_plugin"]`. Tests that use one of the
fixtures below are marked `integration` automatically, so `pytest -m "not integration"` runs the
unit tests alone in seconds. A fixture whose component cannot be started fails the test; nothing
is skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from ._asterisk import Instance, make_spec, running, start, stop
from ._root import is_mounted
from ._services import NatsCluster, ensure_nats, ensure_rabbitmq

__all__ = [
    "app_name",
    "asterisk",
    "asterisk2",
    "nats_cluster",
    "nats_url",
    "rabbitmq_url",
]

_INTEGRATION_FIXTURES = frozenset(
    {"asterisk", "asterisk2", "nats_url", "rabbitmq_url", "nats_cluster", "bus_url"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _session_instance(suffix: str) -> Iterator[Instance]:
    inst = start(make_spec(f"pytest-{os.getpid()}-{suffix}"))
    try:
        yield inst
    finally:
        stop(inst.name)
        # The last instance of the root takes /proc with it: check that nothing leaked.
        if not any(r.root == inst.root for r in running()) and is_mounted(inst.root / "proc"):
            raise RuntimeError(f"{inst.root}/proc is still mounted after the last instance stopped")


@pytest.fixture(scope="session")
def asterisk() -> Iterator[Instance]:
    """A real Asterisk 22 instance for the whole session."""
    yield from _session_instance("a")


@pytest.fixture(scope="session")
def asterisk2(asterisk: Instance) -> Iterator[Instance]:
    """A second, independent Asterisk 22 instance (another entity ID) for multi-node tests."""
    yield from _session_instance("b")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """URL of a NATS server with JetStream (started when none answers)."""
    return ensure_nats()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """AMQP URL of a RabbitMQ broker (started when none answers)."""
    return ensure_rabbitmq()


@pytest.fixture
def nats_cluster() -> Iterator[NatsCluster]:
    """A fresh 3-node NATS cluster on loopback ports."""
    with NatsCluster(3) as cluster:
        yield cluster


@pytest.fixture
def app_name() -> str:
    """An ARI application name no other test uses, so tests never see each other's events."""
    return "t-" + secrets.token_hex(5)
