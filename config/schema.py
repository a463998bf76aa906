"""Turns plain TOML tables into typed, frozen settings, naming the key on any error.

Each settings class is a frozen dataclass; its fields are the allowed keys, a field
without a default is required, and the annotation is the type checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from config.errors import ConfigError, InvalidValue

T = TypeVar("T")


def build(cls: type[T], table: object, where: str) -> T:
    """Build `cls` from `table`, refusing unknown keys, missing keys and bad types."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {_kind(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {allowed})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in table:
            values[name] = coerce(hints[name], table[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    try:
        return cls(**values)
    except InvalidValue as exc:  # a class's own __post_init__ check, naming its key
        raise ConfigError(f"{where}.{exc.key}: {exc.problem}") from None
    except ValueError as exc:  # a check that involves several keys
        raise ConfigError(f"{where}: {exc}") from None


def coerce(tp: Any, value: object, where: str) -> Any:
    """Check `value` against the annotation `tp`; strings from the environment are parsed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value")
    if origin is tuple:
        return _coerce_sequence(typing.get_args(tp), value, where)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_kind(value)}")
        return {
            coerce(key_type, k, f"{where}.{k}"): coerce(value_type, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true or false, got {_kind(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {_kind(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {_kind(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
    raise TypeError(f"unsupported settings type {tp!r} at {where}")  # a bug in a settings class


def _coerce_sequence(args: tuple[Any, ...], value: object, where: str) -> tuple[Any, ...]:
    """A `tuple[X, ...]` from a TOML array, or from a comma-separated environment value."""
    if len(args) != 2 or args[1] is not Ellipsis:
        raise TypeError(f"unsupported settings type tuple{args!r} at {where}")
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected an array, got {_kind(value)}")
    return tuple(coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
