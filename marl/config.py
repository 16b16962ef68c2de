"""Typed configuration schemas: every key is checked against a dataclass before anything compiles.

`from_mapping(Schema, mapping, where)` turns a plain mapping (e.g. Hydra's `cfg.algo`) into the
frozen dataclass `Schema`, raising `ConfigError` with one line that names the key and what is
allowed for an unknown key or a value of the wrong type. Range checks live in each schema's
`validate` method, which raises `ConfigError` the same way.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

Schema = TypeVar("Schema")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        return f"a list of {_type_name(typing.get_args(annotation)[0])}"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any) -> Any:
    """Return `value` as `annotation` or raise TypeError; ints are accepted where floats are."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(annotation):
            try:
                return _coerce(value, option)
            except TypeError:
                continue
        raise TypeError
    if annotation is type(None):
        if value is None:
            return None
        raise TypeError
    if origin is tuple:
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError
        item_type = typing.get_args(annotation)[0]
        return tuple(_coerce(item, item_type) for item in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if annotation is str:
        if isinstance(value, str):
            return value
        raise TypeError
    raise TypeError


def from_mapping(schema: type[Schema], mapping: Mapping[str, Any], where: str) -> Schema:
    """Build `schema` from `mapping`, checking key names and value types.

    `where` is the config path used in messages (e.g. "algo"). Keys listed in the schema's
    optional class attribute `IGNORED_KEYS` (such as the group's own `name`) are skipped.
    """
    hints = typing.get_type_hints(schema)
    fields = {f.name for f in dataclasses.fields(schema) if f.init}
    ignored = set(getattr(schema, "IGNORED_KEYS", ()))
    values = {}
    for key, value in mapping.items():
        if key in ignored:
            continue
        if key not in fields:
            raise ConfigError(
                f"unknown key {where}.{key}; allowed keys: {', '.join(sorted(fields))}"
            )
        try:
            values[key] = _coerce(value, hints[key])
        except TypeError:
            raise ConfigError(
                f"{where}.{key} must be {_type_name(hints[key])}; got {value!r}"
            ) from None
    instance = schema(**values)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(where)
    return instance


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def require_choice(value: Any, allowed: typing.Iterable[Any], key: str) -> None:
    """Raise `ConfigError` unless `value` is one of `allowed`, naming `key` and the options."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
