"""pytest fixtures over the real components: Asterisk sandbox instances and the buses.

Enable with `pytest_plugins = ["ari_proxy.testing.pytest_plugin"]`. Tests that use one of the
fixtures below are marked `integration` automatically, so `pytest -m "not integration"` runs the
unit tests alone in seconds. A fixture whose component cannot be started fails the test; nothing
is skipped.

Tests of interoperation with the Go reference (marked `goref`, or using the `goref` fixture) run
the real Go binaries from `ARI_PROXY_GOREF`, else from `../shared/goref/bin` beside the rootdir.
Where there are none, exactly those tests are deselected, with one line in the report saying
why; with `ARI_PROXY_REQUIRE_GOREF=1` (as CI sets it) their absence is an error instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from ._asterisk import Instance, make_spec, running, start, stop
from ._goref import GOREF_ENV, GoReference
from ._root import is_mounted
from ._services import NatsCluster, ensure_nats, ensure_rabbitmq

__all__ = [
    "app_name",
    "asterisk",
    "asterisk2",
    "goref",
    "nats_cluster",
    "nats_url",
    "rabbitmq_url",
]

_INTEGRATION_FIXTURES = frozenset(
    {"asterisk", "asterisk2", "nats_url", "rabbitmq_url", "nats_cluster", "bus_url", "goref"}
)
REQUIRE_GOREF_ENV = "ARI_PROXY_REQUIRE_GOREF"
_goref_stash = pytest.StashKey[GoReference | None]()
_goref_note = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "goref: runs the real Go ari-proxy binaries (deselected where there are none)"
    )
    config.stash[_goref_stash] = GoReference.find(config.rootpath.parent / "shared/goref/bin")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    go_items = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "goref" in names or item.get_closest_marker("goref") is not None:
            item.add_marker(pytest.mark.goref)
            go_items.append(item)
        if _INTEGRATION_FIXTURES.intersection(names) or item.get_closest_marker("goref"):
            item.add_marker(pytest.mark.integration)
    if not go_items or config.stash[_goref_stash] is not None:
        return
    configured = os.environ.get(GOREF_ENV)
    where = (
        f"{GOREF_ENV}={configured} does not hold them"
        if configured
        else f"{GOREF_ENV} is unset and {config.rootpath.parent / 'shared/goref/bin'} does not "
        "hold them"
    )
    why = f"the Go reference binaries were not found ({where})"
    if os.environ.get(REQUIRE_GOREF_ENV):
        raise pytest.UsageError(f"{REQUIRE_GOREF_ENV} is set but {why}")
    selected = [item for item in items if item not in go_items]
    config.hook.pytest_deselected(items=go_items)
    items[:] = selected
    config.stash[_goref_note] = f"deselected {len(go_items)} Go interop tests: {why}"


def pytest_report_header(config: pytest.Config) -> str:
    ref = config.stash.get(_goref_stash, None)
    return f"goref: {ref.bin if ref is not None else 'not found'}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    note = config.stash.get(_goref_note, "")
    if note:
        terminalreporter.write_line(note, yellow=True, bold=True)


@pytest.fixture(scope="session")
def goref(pytestconfig: pytest.Config) -> GoReference:
    """The real Go ari-proxy binaries (tests using this are deselected where there are none)."""
    ref = pytestconfig.stash[_goref_stash]
    if ref is None:  # deselected at collection; reached only when asked for by hand
        pytest.fail("the Go reference binaries were not found")
    return ref


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
