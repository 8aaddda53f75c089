"""Asterisk's ARI 22 as data: the models, events and REST operations of its api-docs.

Generated ahead of time by `scripts/generate_ari.py` (`_models.py`, `_operations.py`), plus the
hand-written row types of the operation table (`_operation.py`) and decoding that accepts every
shape Asterisk or a Go ari-proxy server writes (`_decoding.py`). No I/O and nothing of the rest
of the package: every other part may import this one.

The models are public as `ari_proxy.ari.models`.
"""

from ._decoding import (
    GO_ZERO_TIMES,
    clear_zero_models,
    convert_lenient,
    decode_lenient,
    decode_model,
    is_zero_model,
)
from ._models import EVENT_ENTITIES, EVENT_TYPES, MODELS, AnyMessage, Event, Message
from ._operation import (
    FREE_TEXT,
    INT_MAX,
    INT_MIN,
    HttpMethod,
    Operation,
    Param,
    ParamLocation,
    build_path,
    build_query,
    check_path,
    check_query,
    control_character,
    int_bounds,
)
from ._operations import OPERATIONS

__all__ = [
    "EVENT_ENTITIES",
    "EVENT_TYPES",
    "FREE_TEXT",
    "GO_ZERO_TIMES",
    "INT_MAX",
    "INT_MIN",
    "MODELS",
    "OPERATIONS",
    "AnyMessage",
    "Event",
    "HttpMethod",
    "Message",
    "Operation",
    "Param",
    "ParamLocation",
    "build_path",
    "build_query",
    "check_path",
    "check_query",
    "clear_zero_models",
    "control_character",
    "convert_lenient",
    "decode_lenient",
    "decode_model",
    "int_bounds",
    "is_zero_model",
]
