"""The ari-proxy server: one Asterisk's ARI served over NATS or RabbitMQ, wire-compatible with
CyCoreSystems/ari-proxy v5 (the `ari-proxy` command runs it)."""

from ._config import SETTINGS, ConfigError, ServerConfig, Setting, load_config
from ._counters import Counters
from ._server import Server

__all__ = [
    "SETTINGS",
    "ConfigError",
    "Counters",
    "Server",
    "ServerConfig",
    "Setting",
    "load_config",
]
