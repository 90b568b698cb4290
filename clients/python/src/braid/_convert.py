"""JSON conversions: typed handler inputs (dataclasses, pydantic models) and outputs."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from dataclasses, pydantic models, enums, tuples, sets and datetimes."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value  # json.dumps reports what it cannot encode


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and callable(getattr(tp, "model_validate", None))


def wants_conversion(tp: Any) -> bool:
    """Whether an annotation asks for more than the JSON value as it is."""
    if tp is None or tp is Any or tp is typing.Any:
        return False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(wants_conversion(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (list, tuple, dict, set, frozenset):
        return any(wants_conversion(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return _is_pydantic(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp))


def from_jsonable(value: Any, tp: Any) -> Any:
    """``value`` (JSON data) converted to the annotation ``tp``.

    Dataclasses are built from objects field by field (recursively, following the field
    annotations); pydantic models use ``model_validate``; ``Optional``/unions, ``list[X]``,
    ``dict[str, X]`` and ``tuple`` are followed. Anything else is returned as it is.
    Raises ``TypeError``/``ValueError`` when the value does not fit.
    """
    if not wants_conversion(tp):
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_jsonable(value, arg)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors) or f"{value!r} fits none of {tp}")
    if origin in (list, set, frozenset):
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (arg,) = typing.get_args(tp) or (Any,)
        return origin(from_jsonable(v, arg) for v in value)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(v, args[0]) for v in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items, got {len(value)}")
        return tuple(from_jsonable(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        args = typing.get_args(tp)
        arg = args[1] if len(args) == 2 else Any
        return {k: from_jsonable(v, arg) for k, v in value.items()}
    if _is_pydantic(tp):
        return tp.model_validate(value)
    # A dataclass.
    if not isinstance(value, dict):
        raise TypeError(f"{tp.__name__} needs a JSON object, got {type(value).__name__}")
    try:
        hints = typing.get_type_hints(tp)
    except Exception:  # noqa: BLE001 - unresolvable annotations: take values as they are
        hints = {}
    known = {f.name: f for f in dataclasses.fields(tp) if f.init}
    # Like serde's default: keys the dataclass does not declare are ignored.
    kwargs = {}
    for name, f in known.items():
        if name in value:
            kwargs[name] = from_jsonable(value[name], hints.get(name, f.type))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{tp.__name__} needs field {name!r}")
    return tp(**kwargs)
