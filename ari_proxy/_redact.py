"""Secrets kept out of logs and error messages: URLs safe to show, and texts scrubbed.

Everything that shows a URL (bus or ARI) shows `redact_url(url)`; texts from libraries that may
echo a secret pass through `scrub` first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["redact_url", "scrub", "url_secrets"]

# Query parameters that carry secrets in the URLs of common clients (`?password=`, `?token=`).
_SECRET_QUERY = re.compile(
    r"([?&;](?:pass|password|passwd|token|auth_token|secret|key|nkey|seed)=)[^&;#]*",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """`url` with its password (or bare token) and secret query values replaced by `***`.

    `nats://user:pass@host` gives `nats://user:***@host`, `nats://token@host` gives
    `nats://***@host`. The user info runs to the *last* `@`, so a password with an unescaped
    `@` or `/` is still hidden; at worst a little more than the secret is hidden.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = (f"{user}:***" if colon else "***") + rest[at:]
    rest = _SECRET_QUERY.sub(r"\1***", rest)
    return f"{scheme}://{rest}" if sep else rest


def url_secrets(urls: Sequence[str], *given: str | None) -> list[str]:
    """The secrets to hide in any text: the `given` ones and those in the URLs' user info.

    A password, or a bare user info (`nats://token@host` carries a token). Longest first, so
    that `scrub` hides a secret that contains another one whole.
    """
    found = {secret for secret in given if secret}
    for url in urls:
        _, sep, rest = url.partition("://")
        userinfo, at, _ = (rest if sep else url).rpartition("@")
        if at and userinfo:
            user, colon, secret = userinfo.partition(":")
            found.add(secret if colon else user)
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every one of `secrets` replaced by `***` (for error texts from libraries)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
