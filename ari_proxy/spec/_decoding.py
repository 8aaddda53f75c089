"""Decoding ARI JSON into the generated models, whoever wrote it.

Asterisk leaves out what is absent. A Go ari-proxy server re-encodes every event and entity from
its own structs, so absent things arrive as zero values instead: `null` for a nested object, a
list or a map (`"caller":null`, `"channels":null`), and whole zero objects such as a
`replace_channel` of empty strings with Go's zero time. Both mean the same, so both decode the
same:

- `null` where the model has a required field is the field's default, as if it were left out;
- an optional nested model (`T | None`) that holds only zero values (`""`, `0`, `false`, empty
  lists and maps, Go's zero time, or such models in turn) is `None`.

The fast path is msgspec's own decoder. Only a document it refuses (which, for Go's shapes,
means a `null` it does not accept) is normalised and converted; a document that still does not
fit raises `msgspec.ValidationError` as before. After either path, the optional nested models
of the result are checked for zero values, which costs one attribute read per optional nested
field of the type.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from .._exceptions import ProtocolError

__all__ = [
    "GO_ZERO_TIMES",
    "clear_zero_models",
    "convert_lenient",
    "decode_lenient",
    "decode_model",
    "is_zero_model",
    "normalise",
]

M = TypeVar("M")

GO_ZERO_TIMES = frozenset(
    {
        "1970-01-01T00:00:00.000+0000",  # ari.DateTime's zero, as the Go server writes it
        "0001-01-01T00:00:00.000+0000",  # time.Time's zero in ARI's layout
        "0001-01-01T00:00:00Z",  # time.Time's zero in RFC 3339
    }
)
"""Date-times that Go writes for a zero `time.Time`: they mean "no time"."""

_any = msgspec.json.Decoder()


def _optional_struct(info: mi.Type) -> type[msgspec.Struct] | None:
    """The model `T` of a field typed `T | None`, else None."""
    if isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types):
        structs = [t.cls for t in info.types if isinstance(t, mi.StructType)]
        if len(structs) == 1:
            return structs[0]
    return None


def _accepts_none(info: mi.Type) -> bool:
    return isinstance(info, mi.NoneType | mi.AnyType) or (
        isinstance(info, mi.UnionType) and any(_accepts_none(t) for t in info.types)
    )


@cache
def _fields(cls: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


_optional_names: dict[type, tuple[str, ...]] = {}


def _optional_models(cls: type) -> tuple[str, ...]:
    """The attributes of `cls` typed `Model | None` (none for a type that is not a model)."""
    names = _optional_names.get(cls)
    if names is None:
        names = ()
        if issubclass(cls, msgspec.Struct):
            names = tuple(f.name for f in _fields(cls) if _optional_struct(f.type) is not None)
        _optional_names[cls] = names
    return names


def _is_zero(item: Any) -> bool:
    if item is None or item is False:
        return True
    if isinstance(item, str):
        return item == "" or item in GO_ZERO_TIMES
    if isinstance(item, int | float):
        return item == 0
    if isinstance(item, list | dict):
        return not item
    if isinstance(item, msgspec.Struct):
        return is_zero_model(item)
    return False


def is_zero_model(value: msgspec.Struct) -> bool:
    """Whether every field of a model holds a zero value (Go's zero time counts as zero)."""
    return all(_is_zero(getattr(value, field.name)) for field in _fields(type(value)))


def clear_zero_models(value: Any) -> Any:
    """Set each optional nested model of `value` that holds only zero values to `None`.

    Works in place (models are mutable) and returns `value`; a kept optional model is visited
    in turn.
    """
    for name in _optional_names.get(type(value)) or _optional_models(type(value)):
        item = getattr(value, name)
        if item is not None:
            if is_zero_model(item):
                setattr(value, name, None)
            else:
                clear_zero_models(item)
    return value


def normalise(body: Any, info: mi.Type) -> Any:
    """`body` (plain JSON) with each `null` that `info` does not accept removed, recursively.

    A removed field takes its default when converted. Lists and maps of models are visited item
    by item; a `null` item where the item type does not accept it is dropped.
    """
    if isinstance(info, mi.UnionType):
        model = _optional_struct(info)
        if model is None or body is None:
            return body
        info = mi.type_info(model)
    if isinstance(info, mi.StructType) and isinstance(body, dict):
        out = {}
        for field in info.fields:
            name = field.encode_name
            if name not in body:
                continue
            value = body[name]
            if value is None and not _accepts_none(field.type):
                continue
            out[name] = normalise(value, field.type)
        if info.tag_field is not None and info.tag_field in body:
            out[info.tag_field] = body[info.tag_field]
        return out
    if isinstance(info, mi.ListType) and isinstance(body, list):
        keep_none = _accepts_none(info.item_type)
        return [normalise(item, info.item_type) for item in body if item is not None or keep_none]
    if isinstance(info, mi.DictType) and isinstance(body, dict):
        return {k: normalise(v, info.value_type) for k, v in body.items()}
    return body


def decode_lenient(
    data: bytes | str,
    model: type[M],
    decoder: msgspec.json.Decoder[M] | None = None,
) -> M:
    """Decode `data` as `model`, accepting Go's zero values (see the module docstring).

    Raises:
        msgspec.DecodeError: the data is not JSON, or does not fit `model` even so.
    """
    try:
        value = (decoder or _decoder_for(model)).decode(data)
    except msgspec.ValidationError:
        return convert_lenient(_any.decode(data), model)
    return clear_zero_models(value)  # type: ignore[no-any-return]


def convert_lenient(body: Any, model: type[M]) -> M:
    """Convert plain JSON (already decoded) to `model`, accepting Go's zero values.

    Raises:
        msgspec.ValidationError: `body` does not fit `model` even so.
    """
    value = msgspec.convert(normalise(body, _info(model)), model)
    return clear_zero_models(value)  # type: ignore[no-any-return]


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_infos: dict[Any, mi.Type] = {}


def _decoder_for(model: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    return decoder


def _info(model: Any) -> mi.Type:
    info = _infos.get(model)
    if info is None:
        info = _infos[model] = mi.type_info(model)
    return info


def decode_model(data: bytes | None, model: type[M]) -> M:
    """Decode ARI JSON (from Asterisk or a Go server) into a model type; `None` is `{}`.

    Raises:
        ProtocolError: the data is not JSON or does not fit the model.
    """
    try:
        return decode_lenient(data or b"{}", model)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"cannot read {getattr(model, '__name__', model)}: {exc}") from None
