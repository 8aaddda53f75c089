"""The server's ARI link settings: `ari.transport` and the outbound mode (`ari.listen*`), read
like every other setting, refused with a clear message (never the secret) when they cannot work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_proxy.ari import rest_over_websocket
from ari_proxy.server import ConfigError, load_config

SECRET = "0utb0und-Pa55"
BASE_ENV = {"ARI_USERNAME": "user", "ARI_PASSWORD": "pw", "ARI_APPLICATION": "app"}


def test_transport_defaults_to_auto_and_reads_websocket_from_the_environment() -> None:
    assert load_config({}, BASE_ENV).ari_transport == "auto"
    config = load_config({}, {**BASE_ENV, "ARI_TRANSPORT": "websocket"})
    assert config.ari_transport == "websocket"
    assert config.ari_listen == ""  # dialling Asterisk stays the default


def test_an_unknown_transport_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"ari\.transport 'ws': expected auto, http or websocket"):
        load_config({"ari.transport": "ws"}, BASE_ENV)


def test_outbound_mode_from_flags_and_a_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "listen-password"
    secret.write_text(SECRET + "\n")
    config = load_config(
        {
            "ari.listen": "127.0.0.1:8765",
            "ari.listen_username": "asterisk",
            "ari.listen_password_file": str(secret),
        },
        BASE_ENV,
    )
    assert (config.ari_listen, config.ari_listen_username) == ("127.0.0.1:8765", "asterisk")
    assert config.ari_listen_password == SECRET
    assert SECRET not in repr(config)
    assert config.describe()["ari_listen_password"] == "***"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"ari.listen": "8765"}, "expected host:port"),
        ({"ari.listen": ":8765"}, "needs ari.listen_username and ari.listen_password"),
        (
            {"ari.listen": ":8765", "ari.listen_username": "asterisk"},
            "needs ari.listen_username and ari.listen_password",
        ),
        (
            {
                "ari.listen": ":8765",
                "ari.listen_username": "asterisk",
                "ari.listen_password": SECRET,
                "ari.listen_tls_cert_file": "/nonexistent/cert.pem",
            },
            "go together",
        ),
        (
            {
                "ari.listen": ":8765",
                "ari.listen_username": "asterisk",
                "ari.listen_password": SECRET,
                "ari.listen_tls_cert_file": "/nonexistent/cert.pem",
                "ari.listen_tls_key_file": "/nonexistent/key.pem",
            },
            "no such file '/nonexistent/cert.pem'",
        ),
    ],
)
def test_outbound_mode_that_cannot_work_is_refused(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(flags, BASE_ENV)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("version", "has_it"),
    [
        ("22.10.1+dfsg+~cs6.17.60671434-1", True),
        ("22.4.0", True),
        ("22.3.2", False),
        ("21.9.0", True),
        ("21.8.1", False),
        ("20.14.0", True),
        ("20.13.0", False),
        ("23.0.0-rc1", True),
        ("18.26.0", False),
        ("certified/20.7-cert5", False),
        ("22.0.0-fake", False),
        ("GIT-master-1234abc", False),
        ("", False),
    ],
)
def test_auto_takes_the_websocket_from_the_releases_that_have_it(
    version: str, has_it: bool
) -> None:
    assert rest_over_websocket(version) is has_it
