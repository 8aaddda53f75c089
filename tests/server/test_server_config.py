"""Configuration: Go's names, precedence flag > environment > file > default, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from ari_proxy.bus import backend_for
from ari_proxy.server import SETTINGS, ConfigError, ServerConfig, load_config

SECRET = "s3cr3t-Pa55"
BASE_ENV = {"ARI_USERNAME": "user", "ARI_PASSWORD": SECRET, "ARI_APPLICATION": "app"}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ari-proxy.yaml"
    path.write_text(text)
    return str(path)


def test_go_example_file_layout(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
ari:
  username: admin
  password: admin
  application: example
  http_url: http://localhost:8088/ari
  websocket_url: ws://localhost:8088/ari/events
messagebus:
  url: nats://nats:4222
""",
    )
    config = load_config({}, {}, path)
    assert config.applications == ("example",)
    assert (config.ari_username, config.ari_password) == ("admin", "admin")
    assert config.websocket_url == "ws://localhost:8088/ari/events"
    assert config.bus_urls == ("nats://nats:4222",)


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ari: {username: from-file, password: pw, application: file-app, http_url: "
        "'http://file:8088/ari'}\nproxy: {max_inflight: 7}\n",
    )
    env = {"ARI_USERNAME": "from-env", "ARI_APPLICATION": "env-app"}
    flags = {"ari.username": "from-flag"}
    config = load_config(flags, env, path)
    assert config.ari_username == "from-flag"  # flag beats env and file
    assert config.applications == ("env-app",)  # env beats file
    assert config.ari_http_url == "http://file:8088/ari"  # file beats default
    assert config.max_inflight == 7
    assert config.request_timeout == 10.0  # default
    assert config.prefix == "ari."


def test_several_apps_and_bus_urls(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "messagebus:\n  url: [nats://a:4222, nats://b:4222]\n",
    )
    config = load_config({"ari.application": "a,b"}, BASE_ENV | {"ARI_APPLICATION": ""}, path)
    assert config.applications == ("a", "b")
    assert config.bus_urls == ("nats://a:4222", "nats://b:4222")
    env = BASE_ENV | {"MESSAGEBUS_URL": "nats://x:1, nats://y:2"}
    assert load_config({}, env).bus_urls == ("nats://x:1", "nats://y:2")


def test_durations_sizes_and_flags() -> None:
    flags = {
        "proxy.request_timeout": "500ms",
        "proxy.announce_interval": "2m",
        "proxy.max_file_size": "1MiB",
        "proxy.max_request_size": "64KiB",
        "verbose": "True",
    }
    config = load_config(flags, BASE_ENV)
    assert config.request_timeout == 0.5
    assert config.announce_interval == 120.0
    assert config.max_file_size == 1024 * 1024
    assert config.max_request_size == 64 * 1024
    assert config.verbose is True


def test_websocket_url_follows_http_url() -> None:
    config = load_config({"ari.http_url": "https://pbx:8089/ari/"}, BASE_ENV)
    assert config.websocket_url == "wss://pbx:8089/ari/events"


def bus_arguments(config: ServerConfig) -> tuple[list[str], dict[str, Any]]:
    """The URLs and transport options the server's bus is built with."""
    return backend_for(config.bus_urls).arguments(list(config.bus_urls), config.bus_settings())


def test_nats_credentials_leave_the_url() -> None:
    env = BASE_ENV | {"MESSAGEBUS_URL": "nats://bob:pa%40ss@n1:4222,nats://n2:4222"}
    config = load_config({}, env)
    assert config.bus_urls == ("nats://n1:4222", "nats://n2:4222")
    assert (config.bus_user, config.bus_password) == ("bob", "pa@ss")
    _, options = bus_arguments(config)
    assert options["user"] == "bob" and options["password"] == "pa@ss"
    assert "pa@ss" not in repr(config) and "pa@ss" not in str(config.describe())


def test_rabbitmq_credentials_go_into_the_url() -> None:
    flags = {
        "messagebus.url": "amqp://rmq:5672/",
        "messagebus.user": "u",
        "messagebus.password": "p w",
    }
    config = load_config(flags, BASE_ENV)
    urls, options = bus_arguments(config)
    assert urls == ["amqp://u:p%20w@rmq:5672/"]
    assert "ssl_context" not in options


def test_kubernetes_and_legacy_nats_url() -> None:
    env = BASE_ENV | {"NATS_SERVICE_HOST": "10.0.0.1", "NATS_SERVICE_PORT_CLIENT": "4223"}
    assert load_config({}, env).bus_urls == ("nats://10.0.0.1:4223",)
    assert load_config({}, BASE_ENV | {"NATS_URL": "nats://old:4222"}).bus_urls == (
        "nats://old:4222",
    )
    # Unlike Go (Go defect 21), an explicit messagebus.url always wins.
    env["MESSAGEBUS_URL"] = "amqp://guest:guest@rmq:5672/"
    assert load_config({}, env).bus_urls == ("amqp://guest:guest@rmq:5672/",)


def test_no_application_gets_a_random_name() -> None:
    config = load_config({}, BASE_ENV | {"ARI_APPLICATION": ""})
    assert len(config.applications) == 1 and len(config.applications[0]) == 26


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({}, {"ARI_PASSWORD": SECRET}, "no username found"),
        ({}, {"ARI_USERNAME": "u"}, "no password found"),
        ({"ari.application": "a.b"}, BASE_ENV, "cannot be a bus subject token"),
        ({"ari.application": "a,a"}, BASE_ENV, "more than once"),
        ({"ari.http_url": "ftp://x/ari"}, BASE_ENV, "is not a http:// or https:// URL"),
        ({"ari.http_url": f"http://u:{SECRET}@x/ari"}, BASE_ENV, "must not carry credentials"),
        ({"messagebus.url": f"redis://u:{SECRET}@x"}, BASE_ENV, "unknown message bus URL"),
        ({"messagebus.url": "nats://a:1,amqp://b:2"}, BASE_ENV, "mix NATS and RabbitMQ"),
        ({"messagebus.prefix": "ari"}, BASE_ENV, "must end with '.'"),
        ({"proxy.request_timeout": "soon"}, BASE_ENV, "proxy.request_timeout from"),
        ({"proxy.max_inflight": "-3"}, BASE_ENV, "greater than zero"),
        ({"messagebus.creds_file": "/nonexistent.creds"}, BASE_ENV, "no such file"),
        ({"messagebus.tls_cert_file": __file__}, BASE_ENV, "go together"),
        ({"ari.tls_ca_file": "/nonexistent/ca.pem"}, BASE_ENV, "ari.tls_ca_file: no such file"),
        ({"ari.tls_cert_file": __file__}, BASE_ENV, "ari.tls_cert_file and ari.tls_key_file"),
        ({"ari.tls_ca_file": __file__}, BASE_ENV, "need an https:// ari.http_url"),
        (
            {"ari.http_url": "https://pbx:8089/ari", "ari.tls_ca_file": __file__},
            BASE_ENV,
            "cannot load the TLS files",
        ),
        (
            {"messagebus.url": "amqp://x", "messagebus.token": SECRET},
            BASE_ENV,
            "NATS only",
        ),
    ],
)
def test_bad_configuration(flags: dict[str, str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(flags, env)
    assert SECRET not in str(info.value)
    assert "\n" not in str(info.value)


def test_ari_tls_files(tmp_path: Path) -> None:
    """The ARI CA, from a YAML file or the environment, makes the context that verifies
    Asterisk; without it the system's CAs do (None: aiohttp's verifying default)."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    https = {"ARI_HTTP_URL": "https://pbx:8089/ari"}
    from_file = load_config({}, BASE_ENV | https, write(tmp_path, f"ari: {{tls_ca_file: {ca}}}\n"))
    from_env = load_config({}, BASE_ENV | https | {"ARI_TLS_CA_FILE": str(ca)})
    for config in (from_file, from_env):
        assert config.ari_tls_ca_file == str(ca) and config.websocket_url.startswith("wss://")
        context = config.ari_ssl_context()
        assert context is not None and len(context.get_ca_certs()) == 1  # that CA, no other
    assert load_config({}, BASE_ENV | https).ari_ssl_context() is None


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config({}, BASE_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config({}, BASE_ENV, write(tmp_path, "ari: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"unknown setting 'ari\.pasword'"):
        load_config({}, BASE_ENV, write(tmp_path, f"ari: {{pasword: {SECRET}}}\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config({}, BASE_ENV, write(tmp_path, "- a\n- b\n"))


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"ari.password": SECRET, "proxy.shutdown_grace": SECRET}, BASE_ENV)
    assert SECRET not in str(info.value)
    config = load_config({}, BASE_ENV | {"MESSAGEBUS_TOKEN": SECRET})
    assert SECRET not in repr(config)
    assert SECRET not in str(config.describe())


def test_home_config_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".ari-proxy.yaml").write_text("ari: {application: from-home}\n")
    env = BASE_ENV | {"HOME": str(tmp_path), "ARI_APPLICATION": ""}
    assert load_config({}, env).applications == ("from-home",)


def test_settings_table_matches_the_config_object() -> None:
    attrs = set(ServerConfig.__dataclass_fields__)
    assert {s.attr for s in SETTINGS} == attrs
    go_names = {s.name for s in SETTINGS if s.go}
    assert {
        "ari.application",
        "ari.username",
        "ari.password",
        "ari.http_url",
        "ari.websocket_url",
        "messagebus.url",
    } <= go_names
    assert {s.env for s in SETTINGS} >= {"ARI_HTTP_URL", "ARI_WEBSOCKET_URL", "MESSAGEBUS_URL"}
