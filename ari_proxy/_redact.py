"""Secrets kept out of logs and error messages: URLs safe to show, and texts scrubbed.

Everything that shows a URL (bus or ARI) shows `redact_url(url)`; texts from libraries that may
echo a secret pass through `scrub` first.

`scrub` hides a secret where it stands *as a secret*, never as a bare substring: a password `b`
must not turn `application 'a.b' cannot be a bus subject token` into `a.*** cannot ***e a
***us ...`, which garbles the message and, worse, tells the reader which letter the password
is. What is hidden:

- the user info of every URL in the text (`nats://user:***@host`, `nats://***@host`) and its
  secret query values (`?token=***`), whatever the secret;
- the value of a credential field, whatever it is: `password=...`, `ARI_PASSWORD=...`,
  `auth_token=...` (any key ending in password, passwd, pass, pwd, secret or token), the same
  keys with a quoted value (`"password": "..."`, `'token': '...'`, `password: "..."`), and
  `Authorization: Basic ...` / `Bearer ...`;
- a known secret (`secrets`) where it stands as a value: the whole text, between matching
  quotes (`'s3cret'`, as `repr` and most libraries echo a value), after `=`, after `: ` as the
  last thing on its line, or before the `@` of a user info.

A known secret that appears inside a longer word, or as an ordinary word of a sentence
(`no password found` when the password is `password`), is left alone: there it is not the
secret, and hiding it would point at it.
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

# A URL inside a text: a scheme, then everything up to whitespace, a quote or an angle bracket.
_URL_IN_TEXT = re.compile(r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")

# The key of a credential field: a word (dots, dashes, underscores allowed) ending in one of
# the names credentials go by, as a whole word (`bypass` is not `pass`).
_KEY = r"(?<![\w.-])(?:[\w.-]*[._-])?(?:password|passwd|pass|pwd|secret|token)"
# `key=value`: the value runs to whitespace, a quote or a separator of fields.
_FIELD_EQUALS = re.compile(_KEY + r"(\s*=\s*)(?!['\"])[^\s&;,'\"})\]]+", re.IGNORECASE)
# `key=` / `key:` / `"key":` with a quoted value: the value is everything between the quotes.
_FIELD_QUOTED = re.compile(
    r"(?P<key>" + _KEY + r")(?P<sep>['\"]?\s*[=:]\s*)(?P<q>['\"])(?P<value>.*?)(?P=q)",
    re.IGNORECASE,
)
_AUTHORIZATION = re.compile(
    r"(\bauthorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer)\s+)[^\s'\"]+", re.IGNORECASE
)

# Where a value after `=` ends: the end of the text, whitespace, a separator, or a sentence's
# `.`, `:`, `!` or `?` followed by whitespace or the end.
_VALUE_END = r"(?=$|[\s,;&)\]}>]|[.:!?](?:\s|$))"
# Where a value after `: ` ends: the end of the line or a closing separator. (A colon is also
# how sentences go on: "cannot be a subject token: it must ...", so a word after it is a value
# only when nothing follows it on the line.)
_LINE_END = r"(?=[ \t]*(?:$|\n)|[,;)\]}])"


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


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with every secret in it replaced by `***`, where it stands as a secret (see the
    module's docstring): URL user info, credential fields, and the known `secrets` where they
    stand as a value. Text without a secret comes back unchanged."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    text = _AUTHORIZATION.sub(r"\1***", text)
    text = _FIELD_QUOTED.sub(lambda m: f"{m['key']}{m['sep']}{m['q']}***{m['q']}", text)
    text = _FIELD_EQUALS.sub(lambda m: m.group()[: m.end(1) - m.start()] + "***", text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if text.strip() == secret:
            return text.replace(secret, "***")
        text = _secret_as_value(secret).sub("***", text)
    return text


def _secret_as_value(secret: str) -> re.Pattern[str]:
    """Where `secret` stands as a value: quoted, after `=`, after `: ` at the end of a line, or
    before a user info's `@` (the `***` replaces the secret alone; what surrounds it stays)."""
    s = re.escape(secret)
    return re.compile(
        rf"(?<=')({s})(?=')"  # 's3cret'
        rf'|(?<=")({s})(?=")'  # "s3cret"
        rf"|(?<=`)({s})(?=`)"  # `s3cret`
        rf"|(?<==)({s}){_VALUE_END}"  # key=s3cret
        rf"|(?<=:\s)({s}){_LINE_END}"  # key: s3cret (the last thing on its line)
        rf"|(?<![^\s:/'\"])({s})(?=@)"  # user:s3cret@host, s3cret@host
    )
