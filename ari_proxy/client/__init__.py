"""The proxy client: the ARI interface over NATS or RabbitMQ, with cluster discovery."""

from ._backend import ProxyBackend
from ._client import ProxyClient, connect
from ._cluster import Cluster, Node
from ._metrics import OUTCOMES, ClientStats, prometheus_collector

__all__ = [
    "OUTCOMES",
    "ClientStats",
    "Cluster",
    "Node",
    "ProxyBackend",
    "ProxyClient",
    "connect",
    "prometheus_collector",
]
