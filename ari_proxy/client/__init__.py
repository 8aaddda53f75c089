"""The proxy client: the ARI interface over NATS or RabbitMQ, with cluster discovery."""

from ._backend import ProxyBackend
from ._client import ProxyClient, connect
from ._cluster import Cluster, Node

__all__ = ["Cluster", "Node", "ProxyBackend", "ProxyClient", "connect"]
