"""`Client.request(method, path)` for the native client: any ARI operation, as raw JSON.

The escape hatch for operations the generated table does not have yet. It goes through the
same REST transport as every generated operation, so the same rules hold:

- the path is a template (`/channels/{channelId}/answer`) whose values come in `path_params`
  and are percent-encoded as whole segments by `spec.build_path`; literal segments must be
  plain (unreserved characters), so a value can never be smuggled into the route;
- a method and template the table knows (`GET /asterisk/info`) use its row, so query values
  are checked against the documented parameters; for any other, each query value's type is
  taken from the value (bool, int, str, or a list of them) and `spec.build_query` checks and
  serialises it as it would a documented parameter;
- the deadline is the transport's (`timeout` per call), errors are the same `AriError`
  subclasses, worded as the generated operations word them;
- only a GET is sent again after a timeout (`retries`): nothing else is known to be safe twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import msgspec

from .._exceptions import AriError, InvalidRequestError, ProtocolError, RequestTimeout
from ..api import JsonValue
from ..spec import OPERATIONS, HttpMethod, Operation, Param
from ._executor import go_error_text
from ._http import RestTransport

__all__ = ["raw_operation", "raw_request"]

logger = logging.getLogger(__name__)

_METHODS: frozenset[str] = frozenset(("GET", "POST", "PUT", "DELETE"))
_KNOWN = {(op.method, op.path): op for op in OPERATIONS.values() if not op.is_websocket}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")
_QUERY_TYPE = {bool: "boolean", int: "long", str: "string"}
_decode = msgspec.json.Decoder()


def _query_param(name: str, value: object) -> Param:
    """A query parameter described by its value, as the api-docs would describe it."""
    items = value if isinstance(value, list | tuple) else (value,)
    types = {_QUERY_TYPE.get(type(item)) for item in items}
    if len(types) != 1 or None in types:
        raise InvalidRequestError(
            f"query parameter {name!r} takes a bool, an int, a str or a list of one of them, "
            f"not {type(value).__name__}"
        )
    kind = types.pop()
    assert kind is not None
    return Param(
        name=name, location="query", type=kind, allow_multiple=isinstance(value, list | tuple)
    )


def raw_operation(method: str, path: str, query: Mapping[str, object]) -> Operation:
    """The `Operation` row for `method` on the path template `path`: the table's when it has
    one, else one made for this call.

    Raises:
        InvalidRequestError: an unknown method, or a path that is not a plain template.
    """
    if method not in _METHODS:
        raise InvalidRequestError(
            f"method {method[:20]!r} is not an ARI method (GET, POST, PUT, DELETE)"
        )
    known = _KNOWN.get((method, path))  # type: ignore[arg-type]
    if known is not None:
        return known
    if not path.startswith("/") or path == "/":
        raise InvalidRequestError(f"path {path[:100]!r} must start with '/' and name a resource")
    names: list[str] = []
    for segment in path[1:].split("/"):
        placeholder = _PLACEHOLDER.fullmatch(segment)
        if placeholder is not None:
            names.append(placeholder.group(1))
        elif not _LITERAL.fullmatch(segment):
            raise InvalidRequestError(
                f"path segment {segment[:100]!r} of {path[:100]!r} is not plain: put values in "
                "path_params ({name} in the path) so they are encoded"
            )
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"path {path[:100]!r} repeats a placeholder")
    return Operation(
        name=f"{method} {path}",
        resource="",
        nickname="",
        method=method,  # type: ignore[arg-type]
        path=path,
        path_params=tuple(names),
        query=tuple(_query_param(name, value) for name, value in query.items()),
        response="",
    )


async def raw_request(
    http: RestTransport,
    method: HttpMethod,
    path: str,
    *,
    path_params: Mapping[str, str],
    query: Mapping[str, object],
    body: JsonValue,
    timeout: float | None,
    retries: int,
) -> JsonValue:
    """Call one ARI operation by method and path template; return its JSON (None when empty).

    Raises:
        InvalidRequestError: a method, path, parameter or body Asterisk would not take,
            refused before sending.
        AriError: Asterisk refused (subclass by HTTP status).
        RequestTimeout, TransportError: Asterisk did not answer.
        ProtocolError: Asterisk's answer is not JSON.
    """
    op = raw_operation(method, path, query)
    attempts = 1 + (retries if op.method == "GET" else 0)
    for attempt in range(attempts):
        try:
            response = await http.request(op, path_params, query, body, timeout=timeout)
        except RequestTimeout:
            if attempt + 1 == attempts:
                raise
            logger.debug("%s %s timed out, retrying", method, path)
            continue
        except AriError as exc:
            text = go_error_text(exc.status, exc.reason)
            raise type(exc)(
                text, status=exc.status, reason=exc.reason, message=exc.message
            ) from None
        except (ValueError, TypeError) as exc:  # building the URL or encoding the body
            raise InvalidRequestError(str(exc)) from None
        if not response.body:
            return None
        try:
            return _decode.decode(response.body)  # type: ignore[no-any-return]
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{method} {path}: Asterisk's answer is not JSON: {exc}") from None
    raise AssertionError("unreachable")  # pragma: no cover
