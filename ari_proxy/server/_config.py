"""The proxy server's configuration: one table of settings, read from flags, environment and a
YAML file with Go ari-proxy's names, precedence flag > environment > file > default.

Every setting has a dotted name (`ari.username`); the flag is `--<name>`, the environment
variable the name upper-cased with `.` turned into `_` (`ARI_USERNAME`, as Go's viper does), and
the YAML key the same path (`ari: {username: ...}`). `SETTINGS` says how each is named, parsed
and described; the `ServerConfig` field it sets holds its type and its default, written once.
docs/configuration.md describes the table (a test checks that it names every setting).

The `messagebus.*` settings but the URLs are the bus's `BusSettings` (same names); which apply
is the URL's backend's business (`ari_proxy.bus` registry), not this module's.

Secrets (the ARI password, bus credentials) never appear in an error message or a `repr`. The
passwords can come from files instead (`ari.password_file`, `messagebus.password_file`), as
Kubernetes secrets and systemd credentials provide them: the file's content, without its
trailing line break, is the password.
"""

from __future__ import annotations

import importlib.util
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .._redact import redact_url, scrub
from .._tls import client_context
from ..ari import REST_TRANSPORTS
from ..bus import (
    BusSettings,
    backends,
    describe_mix,
    expected_schemes,
    find_backend,
    lift_credentials,
)
from ..protocol import Subjects, new_id, valid_token
from ._offers import Fallback

__all__ = [
    "SETTINGS",
    "ConfigError",
    "ServerConfig",
    "Setting",
    "load_config",
]


LOOPS = ("auto", "asyncio", "uvloop")
"""The values of `proxy.loop` (the server command's event loop, `_cli.loop_factory`)."""


class ConfigError(ValueError):
    """The configuration cannot work; the message is one line and never holds a secret."""


# --- value parsers ------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _text(value: object) -> str:
    if isinstance(value, bool | int | float | str):
        return str(value).strip()
    raise ValueError("expected a string")


def _list(value: object) -> tuple[str, ...]:
    """A YAML list, or a comma-separated string."""
    items = value if isinstance(value, list | tuple) else _text(value).split(",")
    return tuple(s for s in (_text(item) for item in items) if s)


def _duration(value: object) -> float:
    """Seconds: a number, or a number with a unit (`500ms`, `10s`, `1m`, `1h`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(_text(value))
        if match is None:
            raise ValueError("expected seconds, or a duration such as 500ms, 10s or 1m")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def _size(value: object) -> int:
    """Bytes: an integer, or one with a unit (`64KiB`, `1MiB`, `4MB`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(_text(value))
        if match is None:
            raise ValueError("expected bytes, or a size such as 64KiB or 4MiB")
        size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


def _count(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    try:
        number = int(value) if isinstance(value, int) else int(_text(value))
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number <= 0:
        raise ValueError("must be greater than zero")
    return number


def _count_or_auto(value: object) -> int:
    """A whole number, or `0`, `auto` or `off` (also empty) for 0: no bound of its own."""
    if isinstance(value, str) and value.strip().lower() in ("", "0", "auto", "off", "none"):
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    return _count(value)


def _interval(value: object) -> float:
    """A duration, or `off` (also `0` or empty) for none: 0.0."""
    if isinstance(value, str) and value.strip().lower() in ("", "0", "off", "none"):
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    return _duration(value)


def split_address(address: str) -> tuple[str | None, int]:
    """`host:port` as `(host, port)`: `:port` (or `*:port`) is every interface (`None`), an
    IPv6 host goes in brackets (`[::1]:9480`).

    Raises:
        ValueError: not `host:port`, or the port is not 0 to 65535.
    """
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("expected host:port, :port for every interface, or off")
    number = int(port)
    if number > 65535:
        raise ValueError("the port must be 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets: [::1]:9480")
    return (host if host not in ("", "*") else None), number


def _address(value: object) -> str:
    """`host:port`, `:port`, or `off` (also empty) for no listener: ""."""
    text = _text(value)
    if text.lower() in ("", "off", "none"):
        return ""
    split_address(text)
    return text


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration setting.

    Attributes:
        name: dotted name; also the flag (`--name`), the YAML path and (upper-cased, `_` for
            `.`) the environment variable.
        attr: the `ServerConfig` attribute it sets (which holds its default).
        parse: turns a flag, environment or YAML value into the attribute's value.
        help: one line for `--help` and the docs.
        secret: never shown in errors, reprs or logs.
        go: whether Go ari-proxy v5 has the setting.
    """

    name: str
    attr: str
    parse: Callable[[object], Any]
    help: str
    secret: bool = False
    go: bool = False

    @property
    def default(self) -> Any:
        """The value when nothing sets it: the default of the `ServerConfig` field. A required
        setting (a field without a default) is empty (`""`, `()`), which `ServerConfig`
        refuses with a message naming the setting."""
        spec = ServerConfig.__dataclass_fields__[self.attr]
        if spec.default is not MISSING:
            return spec.default
        return self.parse("")

    @property
    def env(self) -> str:
        """The environment variable (`ari.http_url` -> `ARI_HTTP_URL`)."""
        return self.name.upper().replace(".", "_")

    @property
    def flag(self) -> str:
        """The command-line flag."""
        return "--" + self.name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ari.application",
        "applications",
        _list,
        "ARI application(s) to serve, comma-separated (default: a random name, as Go does)",
        go=True,
    ),
    Setting("ari.username", "ari_username", _text, "ARI user (required)", go=True),
    Setting("ari.password", "ari_password", _text, "ARI password (required)", secret=True, go=True),
    Setting(
        "ari.password_file",
        "ari_password_file",
        _text,
        "file holding the ARI password (instead of ari.password; a trailing line break is "
        "dropped), e.g. a Kubernetes secret or a systemd credential",
    ),
    Setting("ari.http_url", "ari_http_url", _text, "ARI REST base URL", go=True),
    Setting(
        "ari.websocket_url",
        "ari_websocket_url",
        _text,
        "ARI events WebSocket URL (default: derived from ari.http_url)",
        go=True,
    ),
    Setting(
        "ari.tls_ca_file",
        "ari_tls_ca_file",
        _text,
        "CA bundle that verifies Asterisk's certificate on https:// and wss:// (default: the "
        "system's CAs)",
    ),
    Setting(
        "ari.tls_cert_file",
        "ari_tls_cert_file",
        _text,
        "client certificate to present to Asterisk (with ari.tls_key_file)",
    ),
    Setting("ari.tls_key_file", "ari_tls_key_file", _text, "the client certificate's key"),
    Setting(
        "ari.max_connections",
        "ari_max_connections",
        _count,
        "most HTTP connections to Asterisk at once (Asterisk allows 100 sessions by default)",
    ),
    Setting(
        "ari.transport",
        "ari_transport",
        _text,
        "how requests reach Asterisk: http (their own connections), websocket (on the "
        "events WebSocket, Asterisk 22.4+; recordings still download over HTTP), or auto "
        "(default): websocket when Asterisk's version has it, else http",
    ),
    Setting(
        "ari.listen",
        "ari_listen",
        _address,
        "outbound mode: host:port (or :port) where Asterisk dials its outbound persistent "
        "WebSocket (ari.conf type=outbound_websocket, Asterisk 22.5+) instead of the proxy "
        "dialling ari.websocket_url; off (default): dial",
    ),
    Setting(
        "ari.listen_username",
        "ari_listen_username",
        _text,
        "outbound mode: the user Asterisk presents (websocket_client.conf username)",
    ),
    Setting(
        "ari.listen_password",
        "ari_listen_password",
        _text,
        "outbound mode: the password Asterisk presents (websocket_client.conf password)",
        secret=True,
    ),
    Setting(
        "ari.listen_password_file",
        "ari_listen_password_file",
        _text,
        "file holding ari.listen_password (a trailing line break is dropped)",
    ),
    Setting(
        "ari.listen_tls_cert_file",
        "ari_listen_tls_cert_file",
        _text,
        "outbound mode: certificate to serve wss:// with (websocket_client.conf tls_enabled)",
    ),
    Setting(
        "ari.listen_tls_key_file",
        "ari_listen_tls_key_file",
        _text,
        "outbound mode: the certificate's key",
    ),
    Setting(
        "messagebus.url",
        "bus_urls",
        _list,
        "message bus URL(s), comma-separated or a YAML list: nats://, tls://, amqp://, amqps://",
        go=True,
    ),
    Setting("messagebus.user", "bus_user", _text, "bus user (instead of user info in the URL)"),
    Setting("messagebus.password", "bus_password", _text, "bus password", secret=True),
    Setting(
        "messagebus.password_file",
        "bus_password_file",
        _text,
        "file holding the bus password (instead of messagebus.password; a trailing line break "
        "is dropped)",
    ),
    Setting("messagebus.token", "bus_token", _text, "NATS token", secret=True),
    Setting("messagebus.creds_file", "bus_creds_file", _text, "NATS .creds file (JWT + seed)"),
    Setting("messagebus.nkey_seed_file", "bus_nkey_seed_file", _text, "NATS nkey seed file"),
    Setting("messagebus.tls_ca_file", "bus_tls_ca_file", _text, "CA bundle to verify the bus"),
    Setting("messagebus.tls_cert_file", "bus_tls_cert_file", _text, "client certificate"),
    Setting("messagebus.tls_key_file", "bus_tls_key_file", _text, "client certificate key"),
    Setting("messagebus.name", "bus_name", _text, "connection name shown by the bus"),
    Setting("messagebus.prefix", "prefix", _text, "subject prefix (must end with '.')"),
    Setting(
        "proxy.request_timeout",
        "request_timeout",
        _duration,
        "longest an ARI request may take before the client gets a timeout error",
    ),
    Setting(
        "proxy.max_inflight",
        "max_inflight",
        _count,
        "requests executed at once; beyond it requests get 'server busy'",
    ),
    Setting(
        "proxy.max_inflight_per_client",
        "max_inflight_per_client",
        _count_or_auto,
        "requests one client (one reply inbox) may have executing at once; 0 or auto: an "
        "equal share of proxy.max_inflight among the clients active in the last second, "
        "at least 4, applied once half of the slots are taken",
    ),
    Setting("proxy.max_request_size", "max_request_size", _size, "largest request body accepted"),
    Setting(
        "proxy.max_file_size",
        "max_file_size",
        _size,
        "largest stored recording sent over the bus (also capped by the bus's max payload)",
    ),
    Setting(
        "proxy.event_queue_size",
        "event_queue_size",
        _count,
        "ARI events held while the bus is slow or down; beyond it the oldest are dropped",
    ),
    Setting(
        "proxy.announce_interval",
        "announce_interval",
        _duration,
        "time between periodic announcements",
    ),
    Setting(
        "proxy.entity_check_interval",
        "entity_check_interval",
        _duration,
        "time between checks of the Asterisk entity ID",
    ),
    Setting(
        "proxy.shutdown_grace",
        "shutdown_grace",
        _duration,
        "longest wait at shutdown for requests in flight and queued events",
    ),
    Setting(
        "proxy.max_dialog_bindings",
        "max_dialog_bindings",
        _count,
        "most entities bound to dialogs; beyond it the oldest binding not of a call taken "
        "with listen() is dropped",
    ),
    Setting(
        "proxy.max_bindings_per_dialog",
        "max_bindings_per_dialog",
        _count_or_auto,
        "most entities one dialog is bound to (0: no bound of its own); beyond it the "
        "dialog's oldest binding is dropped",
    ),
    Setting(
        "proxy.isolate_applications",
        "isolate_applications",
        _flag,
        "refuse a request received for one application that names another (an originate or "
        "move into it, its subscriptions); on by default",
    ),
    Setting(
        "proxy.listen_deadline",
        "listen_deadline",
        _duration,
        "how long a call is offered to the listen group before the fallback runs",
    ),
    Setting(
        "proxy.listen_fallback",
        "listen_fallback",
        _text,
        "what happens to a call no instance took: hangup[:<reason>] or "
        "continue[:<context>,<exten>,<priority>]",
    ),
    Setting(
        "proxy.listen_resume_grace",
        "listen_resume_grace",
        _duration,
        "after a restart, how long owners have to take their calls again before the calls "
        "still in Stasis are offered anew",
    ),
    Setting(
        "proxy.listen_liveness_timeout",
        "listen_liveness_timeout",
        _duration,
        "silence after which an instance that owns calls is gone and its calls are handed "
        "over (at least twice the instance's heartbeat)",
    ),
    Setting(
        "proxy.max_call_state",
        "max_call_state",
        _size,
        "largest state an application may save beside one call (Call.save_state)",
    ),
    Setting(
        "proxy.metrics_address",
        "metrics_address",
        _address,
        "HTTP listener for /metrics, /livez and /readyz: host:port, :port for every "
        "interface, or off (default off)",
    ),
    Setting(
        "proxy.stats_interval",
        "stats_interval",
        _interval,
        "time between 'stats' log lines with the counters, or off (default off)",
    ),
    Setting(
        "proxy.loop",
        "loop",
        _text,
        "the event loop: uvloop, asyncio, or auto (default): uvloop where it is installed",
    ),
    Setting("verbose", "verbose", _flag, "debug logging", go=True),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_BUS_SETTINGS = {f.name for f in fields(BusSettings)}
# Go's dead legacy name (Go defect 21): honoured only when messagebus.url is not set anywhere.
_LEGACY_NATS_URL = Setting("nats.url", "bus_urls", _list, "legacy NATS URL", go=True)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the proxy server needs; build it with `load_config` or directly.

    Durations are seconds, sizes bytes. `applications` holds one or more ARI applications
    served over one WebSocket. Secrets are left out of `repr`.
    """

    applications: tuple[str, ...]
    ari_username: str
    ari_password: str = field(default="", repr=False)
    ari_password_file: str = ""
    ari_http_url: str = "http://localhost:8088/ari"
    ari_websocket_url: str = ""
    ari_tls_ca_file: str = ""
    ari_tls_cert_file: str = ""
    ari_tls_key_file: str = ""
    ari_max_connections: int = 32
    ari_transport: str = "auto"
    ari_listen: str = ""
    ari_listen_username: str = ""
    ari_listen_password: str = field(default="", repr=False)
    ari_listen_password_file: str = ""
    ari_listen_tls_cert_file: str = ""
    ari_listen_tls_key_file: str = ""
    bus_urls: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    bus_user: str = ""
    bus_password: str = field(default="", repr=False)
    bus_password_file: str = ""
    bus_token: str = field(default="", repr=False)
    bus_creds_file: str = ""
    bus_nkey_seed_file: str = ""
    bus_tls_ca_file: str = ""
    bus_tls_cert_file: str = ""
    bus_tls_key_file: str = ""
    bus_name: str = "ari-proxy"
    prefix: str = "ari."
    request_timeout: float = 10.0
    max_inflight: int = 256
    max_inflight_per_client: int = 0
    max_request_size: int = 1024 * 1024
    max_file_size: int = 4 * 1024 * 1024
    event_queue_size: int = 10_000
    announce_interval: float = 60.0
    entity_check_interval: float = 10.0
    shutdown_grace: float = 10.0
    max_dialog_bindings: int = 100_000
    max_bindings_per_dialog: int = 1_000
    isolate_applications: bool = True
    listen_deadline: float = 10.0
    listen_fallback: str = "hangup"
    listen_resume_grace: float = 3.0
    listen_liveness_timeout: float = 2.0
    max_call_state: int = 4096
    metrics_address: str = ""
    stats_interval: float = 0.0
    loop: str = "auto"
    verbose: bool = False

    def __post_init__(self) -> None:
        # The passwords given as files are read once, here (frozen: set as the dataclass
        # itself would).
        for attr, file_attr in (
            ("ari_password", "ari_password_file"),
            ("ari_listen_password", "ari_listen_password_file"),
            ("bus_password", "bus_password_file"),
        ):
            path = getattr(self, file_attr)
            if not path:
                continue
            secret = read_secret_file(path, _setting_for(file_attr))
            if getattr(self, attr) not in ("", secret):  # equal: a copy (dataclasses.replace)
                raise ConfigError(
                    f"both {_setting_for(attr)} and {_setting_for(file_attr)} are set: "
                    "give the password one way only"
                )
            object.__setattr__(self, attr, secret)
        _validate(self)

    @property
    def websocket_url(self) -> str:
        """The events WebSocket URL: as configured, or derived from the REST URL."""
        if self.ari_websocket_url:
            return self.ari_websocket_url
        base = self.ari_http_url.rstrip("/")
        return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/events"

    def ari_ssl_context(self) -> ssl.SSLContext | None:
        """How `https://` and `wss://` verify Asterisk: the `ari.tls_*` files, or None (the
        system's CAs)."""
        if not (self.ari_tls_ca_file or self.ari_tls_cert_file):
            return None
        return client_context(self.ari_tls_ca_file, self.ari_tls_cert_file, self.ari_tls_key_file)

    def bus_settings(self) -> BusSettings:
        """The `messagebus.*` settings but the URLs, by their names, for the bus backend."""
        return BusSettings(
            **{
                setting.name.removeprefix("messagebus."): getattr(self, setting.attr)
                for setting in SETTINGS
                if setting.name.removeprefix("messagebus.") in _BUS_SETTINGS
            }
        )

    def describe(self) -> dict[str, object]:
        """The configuration for a log line: secrets left out, URLs redacted."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr:
                value = "***" if value else ""
            elif f.name == "bus_urls":
                value = [redact_url(url) for url in value]
            shown[f.name] = value
        return shown


def read_secret_file(path: str, setting: str) -> str:
    """The secret a file holds, without its trailing line breaks (`echo` and editors add one;
    Kubernetes secrets and systemd credentials hold the bytes as given).

    Raises:
        ConfigError: the file is missing, unreadable, not text or empty; the message names the
            setting and the path, never the content.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{setting}: cannot read {path!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: {path!r} is not UTF-8 text") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ConfigError(f"{setting}: {path!r} is empty")
    if "\n" in secret or "\r" in secret:
        raise ConfigError(f"{setting}: {path!r} holds more than one line")
    return secret


def _validate(config: ServerConfig) -> None:
    if not config.applications:
        raise ConfigError("no ARI application given (--ari.application or ARI_APPLICATION)")
    for app in config.applications:
        if not valid_token(app):
            raise ConfigError(
                f"ARI application {app!r} cannot be a bus subject token: "
                "it must not contain '.', '*', '>', '#', spaces or control characters"
            )
    if len(set(config.applications)) != len(config.applications):
        raise ConfigError("ARI applications are listed more than once")
    try:
        Fallback.parse(config.listen_fallback)
    except ValueError as exc:
        raise ConfigError(f"proxy.listen_fallback: {exc}") from None
    if not config.ari_username:
        raise ConfigError("no username found (--ari.username, ARI_USERNAME or ari.username)")
    if not config.ari_password:
        raise ConfigError(
            "no password found (--ari.password, ARI_PASSWORD or ari.password, or a file named "
            "by --ari.password_file, ARI_PASSWORD_FILE or ari.password_file)"
        )
    for name, url, schemes in (
        ("ari.http_url", config.ari_http_url, {"http", "https"}),
        ("ari.websocket_url", config.websocket_url, {"ws", "wss"}),
    ):
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            wanted = " or ".join(f"{s}://" for s in sorted(schemes))
            raise ConfigError(f"{name} {redact_url(url)!r} is not a {wanted} URL")
        if parts.username or parts.password:
            raise ConfigError(f"{name} must not carry credentials: use ari.username/ari.password")
    _validate_ari_link(config)
    if not config.bus_urls:
        raise ConfigError("no message bus URL given (--messagebus.url or MESSAGEBUS_URL)")
    chosen = []
    for url in config.bus_urls:
        backend = find_backend(url)
        if backend is None:
            raise ConfigError(
                f"unknown message bus URL {redact_url(url)!r}: expected {expected_schemes()}"
            )
        if backend not in chosen:
            chosen.append(backend)
    if len(chosen) > 1:
        raise ConfigError(f"message bus URLs mix {describe_mix(chosen)}")
    for name in chosen[0].unsupported(config.bus_settings()):
        takers = describe_mix([b for b in backends() if name in b.settings]) or "no bus"
        raise ConfigError(
            f"messagebus.{name} applies to {takers} only, not to {chosen[0].schemes[0]}:// URLs"
        )
    try:
        Subjects(config.prefix)
    except ValueError as exc:
        raise ConfigError(f"messagebus.prefix: {exc}") from None
    for name in ("bus_creds_file", "bus_nkey_seed_file", "bus_tls_ca_file", "bus_tls_cert_file"):
        path = getattr(config, name)
        if path and not os.path.isfile(path):
            raise ConfigError(f"{_setting_for(name)}: no such file {path!r}")
    if config.bus_tls_key_file and not os.path.isfile(config.bus_tls_key_file):
        raise ConfigError(f"messagebus.tls_key_file: no such file {config.bus_tls_key_file!r}")
    if bool(config.bus_tls_cert_file) != bool(config.bus_tls_key_file):
        raise ConfigError("messagebus.tls_cert_file and messagebus.tls_key_file go together")
    if config.metrics_address:
        try:
            split_address(config.metrics_address)
        except ValueError as exc:
            raise ConfigError(f"proxy.metrics_address {config.metrics_address!r}: {exc}") from None
    if config.stats_interval < 0:
        raise ConfigError("proxy.stats_interval must not be negative (0 turns it off)")


def _validate_ari_link(config: ServerConfig) -> None:
    """The ARI transport, its TLS files and, in outbound mode, the listener."""
    if config.ari_transport not in REST_TRANSPORTS:
        choices = ", ".join(REST_TRANSPORTS[:-1]) + " or " + REST_TRANSPORTS[-1]
        raise ConfigError(f"ari.transport {config.ari_transport!r}: expected {choices}")
    if config.loop not in LOOPS:
        raise ConfigError(f"proxy.loop {config.loop!r}: expected auto, asyncio or uvloop")
    if config.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError("proxy.loop uvloop: uvloop is not installed")
    tls_files = ("ari_tls_ca_file", "ari_tls_cert_file", "ari_tls_key_file")
    for attr in tls_files:
        path = getattr(config, attr)
        if path and not os.path.isfile(path):
            raise ConfigError(f"{_setting_for(attr)}: no such file {path!r}")
    if bool(config.ari_tls_cert_file) != bool(config.ari_tls_key_file):
        raise ConfigError("ari.tls_cert_file and ari.tls_key_file go together")
    uses_tls = config.ari_http_url.startswith("https://") or config.websocket_url.startswith(
        "wss://"
    )
    if any(getattr(config, attr) for attr in tls_files) and not uses_tls:
        raise ConfigError(
            "ari.tls_ca_file, ari.tls_cert_file and ari.tls_key_file need an https:// "
            "ari.http_url or a wss:// ari.websocket_url"
        )
    try:
        config.ari_ssl_context()
    except OSError as exc:  # ssl.SSLError too: not PEM, or a key that does not match
        raise ConfigError(f"ari.tls_*_file: cannot load the TLS files ({exc})") from None
    if not config.ari_listen:
        return
    try:
        split_address(config.ari_listen)
    except ValueError as exc:
        raise ConfigError(f"ari.listen {config.ari_listen!r}: {exc}") from None
    if not config.ari_listen_username or not config.ari_listen_password:
        raise ConfigError(
            "ari.listen needs ari.listen_username and ari.listen_password (or "
            "ari.listen_password_file): the credentials Asterisk presents"
        )
    cert, key = config.ari_listen_tls_cert_file, config.ari_listen_tls_key_file
    if bool(cert) != bool(key):
        raise ConfigError("ari.listen_tls_cert_file and ari.listen_tls_key_file go together")
    for name, path in (("ari.listen_tls_cert_file", cert), ("ari.listen_tls_key_file", key)):
        if path and not os.path.isfile(path):
            raise ConfigError(f"{name}: no such file {path!r}")


def _setting_for(attr: str) -> str:
    return next(s.name for s in SETTINGS if s.attr == attr)


# --- loading ------------------------------------------------------------------------------------


def _flatten(tree: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}".lower()
        if isinstance(value, Mapping):
            flat.update(_flatten(value, source, name + "."))
        elif value is not None:
            flat[name] = value
    return flat


def read_config_file(path: str) -> dict[str, object]:
    """The settings in a YAML (or JSON) file, by dotted name.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or names an unknown setting.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path!r} is not valid YAML{line}") from None
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise ConfigError(f"config file {path!r} must hold a mapping such as 'ari: {{...}}'")
    flat = _flatten(tree, path)
    for name in flat:
        if name not in _BY_NAME and name != _LEGACY_NATS_URL.name:
            raise ConfigError(f"unknown setting {name!r} in config file {path!r}")
    return flat


def default_config_file(environ: Mapping[str, str]) -> str | None:
    """`$HOME/.ari-proxy.yaml` (or `.yml`, `.json`) when it exists, as Go looks for it."""
    home = environ.get("HOME")
    if not home:
        return None
    for ext in ("yaml", "yml", "json"):
        candidate = os.path.join(home, f".ari-proxy.{ext}")
        if os.path.isfile(candidate):
            return candidate
    return None


def _parse(setting: Setting, value: object, source: str) -> Any:
    try:
        return setting.parse(value)
    except ValueError as exc:
        shown = "" if setting.secret else f" {_show(setting, value)!r}"
        raise ConfigError(f"{setting.name} from {source}:{shown} {exc}") from None


def _show(setting: Setting, value: object) -> str:
    text = str(value)
    return redact_url(text) if "url" in setting.name else text


def load_config(
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    config_file: str | None = None,
) -> ServerConfig:
    """Build the configuration: flag > environment > file > default.

    Args:
        flags: flag values given on the command line, by setting name (`ari.username`).
        environ: the environment.
        config_file: a YAML file given with `--config`; otherwise `$HOME/.ari-proxy.yaml` is
            read when it exists.

    Raises:
        ConfigError: a value is invalid, a required one is missing, or the file is unusable.
    """
    path = config_file or default_config_file(environ)
    file_values = read_config_file(path) if path else {}
    secrets = [
        str(source[key])
        for setting in SETTINGS
        if setting.secret
        for source, key in (
            (flags, setting.name),
            (environ, setting.env),
            (file_values, setting.name),
        )
        if source.get(key)
    ]
    try:
        return _build(flags, environ, file_values, path)
    except ConfigError as exc:
        # A secret given in the wrong place (a flag value shifted by one) must not be echoed
        # by the error about that place either.
        raise ConfigError(scrub(str(exc), secrets)) from None


def _build(
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    file_values: Mapping[str, object],
    path: str | None,
) -> ServerConfig:
    values: dict[str, Any] = {}
    explicit_bus_url = False
    for setting in SETTINGS:
        if setting.name in flags:
            value = _parse(setting, flags[setting.name], setting.flag)
        elif environ.get(setting.env, "") != "":
            value = _parse(setting, environ[setting.env], f"${setting.env}")
        elif setting.name in file_values:
            value = _parse(setting, file_values[setting.name], f"{path}")
        else:
            values[setting.attr] = setting.default
            continue
        if setting.name == "messagebus.url":
            explicit_bus_url = True
        values[setting.attr] = value
    if not explicit_bus_url:
        values["bus_urls"] = _fallback_bus_urls(flags, environ, file_values, path)
    if not values["applications"]:
        # Go's native client falls back to a random application name.
        values["applications"] = (new_id(),)
    # Credentials in URLs that apply to the whole cluster (NATS: nats-py would use them for
    # their own server only) become messagebus.user/password, and leave the URLs we log.
    values["bus_urls"], user, password = lift_credentials(values["bus_urls"])
    values["bus_user"] = values["bus_user"] or user
    values["bus_password"] = values["bus_password"] or password
    return ServerConfig(**values)


def _fallback_bus_urls(
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    file_values: Mapping[str, object],
    path: str | None,
) -> tuple[str, ...]:
    """Where the bus is when `messagebus.url` is not set: Kubernetes' NATS service, then the
    legacy `nats.url`, then the default. Unlike Go (Go defect 21) an explicit URL always wins."""
    host = environ.get("NATS_SERVICE_HOST", "")
    if host:
        port = environ.get("NATS_SERVICE_PORT_CLIENT", "") or "4222"
        return (f"nats://{host}:{port}",)
    legacy = _LEGACY_NATS_URL
    if "nats.url" in flags:
        return tuple(_parse(legacy, flags["nats.url"], "--nats.url"))
    if environ.get("NATS_URL", ""):
        return tuple(_parse(legacy, environ["NATS_URL"], "$NATS_URL"))
    if "nats.url" in file_values:
        return tuple(_parse(legacy, file_values["nats.url"], f"{path}"))
    return tuple(_BY_NAME["messagebus.url"].default)
