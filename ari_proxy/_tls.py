"""The TLS context a client verifies its peer with, from the `tls_*_file` settings (the bus's
and ARI's alike)."""

from __future__ import annotations

import ssl

__all__ = ["client_context"]


def client_context(ca_file: str = "", cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """A context that verifies the peer's certificate and host name against `ca_file` (a PEM
    bundle; empty: the system's CAs) and, with `cert_file` (and `key_file` when the key is
    not in it), presents that client certificate."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context
