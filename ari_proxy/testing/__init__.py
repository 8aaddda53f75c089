"""Test kit: real Asterisk 22 sandbox instances, bus services, sipp calls and pytest fixtures,
and a fake ARI (`FakeAri`) for what a real Asterisk cannot do (docs/cookbook/testing.md)."""

from ._asterisk import Instance, InstanceSpec, free_port, make_spec, running, start, stop, stop_all
from ._fake_ari import FakeAri, FakeRequest
from ._fleet import Callers, Fleet, Line
from ._fuzz import (
    BusFuzzer,
    FuzzMessage,
    FuzzReport,
    asterisk_resources,
    remove_resources,
    send_fuzz,
)
from ._goref import GOREF_ENV, GoClientError, GoReference, GoServer, wait_serving
from ._proxy import (
    outbound_config,
    outbound_spec,
    proxy_config,
    proxy_env,
    running_outbound,
    running_proxy,
    wait_until,
)
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
from ._tls import Certificates, RabbitMQNode, TlsNats, TlsRabbitMQ
from ._traffic import CallSource, Ledger, Taker, takers

__all__ = [
    "DEFAULT_ROOT",
    "GOREF_ENV",
    "NATS_URL",
    "RABBITMQ_URL",
    "BusFuzzer",
    "CallSource",
    "Callers",
    "Certificates",
    "FakeAri",
    "FakeRequest",
    "Fleet",
    "FuzzMessage",
    "FuzzReport",
    "GoClientError",
    "GoReference",
    "GoServer",
    "Instance",
    "InstanceSpec",
    "Ledger",
    "Line",
    "NatsCluster",
    "RabbitMQNode",
    "SandboxError",
    "SippResult",
    "Taker",
    "TcpProxy",
    "TlsNats",
    "TlsRabbitMQ",
    "asterisk_resources",
    "ensure_nats",
    "ensure_rabbitmq",
    "ensure_root",
    "free_port",
    "make_spec",
    "nats_server_binary",
    "outbound_config",
    "outbound_spec",
    "proxy_config",
    "proxy_env",
    "remove_resources",
    "root_is_valid",
    "running",
    "running_outbound",
    "running_proxy",
    "send_fuzz",
    "sipp_calls",
    "start",
    "stop",
    "stop_all",
    "takers",
    "tcp_open",
    "wait_serving",
    "wait_until",
]
