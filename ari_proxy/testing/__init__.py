"""Test kit: real Asterisk 22 sandbox instances, bus services, sipp calls and pytest fixtures,
and a fake ARI (`FakeAri`) for what a real Asterisk cannot do (docs/cookbook/testing.md)."""

from ._asterisk import Instance, InstanceSpec, free_port, make_spec, running, start, stop, stop_all
from ._fake_ari import FakeAri, FakeRequest
from ._goref import GOREF_ENV, GoClientError, GoReference, GoServer
from ._proxy import proxy_config, running_proxy, wait_until
from ._root import DEFAULT_ROOT, SandboxError, ensure_root, root_is_valid
from ._services import (
    NATS_URL,
    RABBITMQ_URL,
    NatsCluster,
    ensure_nats,
    ensure_rabbitmq,
    nats_server_binary,
    tcp_open,
)
from ._sipp import SippResult, sipp_calls
from ._tcpproxy import TcpProxy
from ._traffic import CallSource, Ledger, Taker

__all__ = [
    "DEFAULT_ROOT",
    "GOREF_ENV",
    "NATS_URL",
    "RABBITMQ_URL",
    "CallSource",
    "FakeAri",
    "FakeRequest",
    "GoClientError",
    "GoReference",
    "GoServer",
    "Instance",
    "InstanceSpec",
    "Ledger",
    "NatsCluster",
    "SandboxError",
    "SippResult",
    "Taker",
    "TcpProxy",
    "ensure_nats",
    "ensure_rabbitmq",
    "ensure_root",
    "free_port",
    "make_spec",
    "nats_server_binary",
    "proxy_config",
    "root_is_valid",
    "running",
    "running_proxy",
    "sipp_calls",
    "start",
    "stop",
    "stop_all",
    "tcp_open",
    "wait_until",
]
