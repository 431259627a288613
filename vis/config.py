"""Typed configuration: dataclasses built from YAML mappings, validated at load.

Contract: ``from_mapping(Cls, data, "detector")`` returns a ``Cls`` or raises ``ConfigError``
whose one-line message names the full key path and the bad value. Field types are checked
from annotations (int, float, bool, str, Literal, tuples/lists, Optional, nested dataclasses);
range checks live in each class's ``__post_init__`` and raise ``ConfigError`` too. Every
number is checked here first: floats must be finite (no NaN or infinity) and integers within
``±MAX_INT`` (2**53), so no ``__post_init__`` sees a value a comparison cannot order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")
log = logging.getLogger(__name__)

#: the largest integer magnitude any key accepts (exact in a float64; keys have tighter ranges)
MAX_INT = 2**53


class ConfigError(ValueError):
    """Invalid configuration; the message names the key and the value."""


def _check(path: str, tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None  # null is None, never an optional section's defaults
        errors = []
        for alt in get_args(tp):
            if alt is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check(path, alt, value)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}={_show(value)} is not allowed")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(
                f"{path}={_show(value)} is not one of {', '.join(repr(a) for a in get_args(tp))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_mapping(tp, value, path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}={_show(value)} must be a list")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}={_show(value)} must have {len(args)} items")
            items = [_check(f"{path}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value))]
        else:
            inner = args[0] if args else Any
            items = [_check(f"{path}[{i}]", inner, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}={_show(value)} must be a mapping")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}={_show(value)} must be a number")
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise ConfigError(f"{path}={_short(value)} is out of range (at most {MAX_INT:.0e})")
        if not math.isfinite(value):
            raise ConfigError(f"{path}={_show(value)} must be a finite number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}={_show(value)} must be an integer")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{path}={_short(value)} is out of range (at most {MAX_INT:.0e})")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}={_show(value)} must be true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}={_show(value)} must be a string")
        return value
    return value


def _show(value: Any) -> str:
    """``repr(value)`` cut to 80 characters, for a one-line message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return _short(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _short(value: int) -> str:
    """An integer for a one-line message: its digits, or its size when it has more than 20."""
    digits = len(str(abs(value))) if value.bit_length() < 10000 else value.bit_length() * 3 // 10
    return str(value) if digits <= 20 else f"<an integer of {digits} digits>"


def from_mapping(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}={_show(data)} must be a mapping")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in data if k not in fields), key=str)
    if unknown:
        name = unknown[0] if isinstance(unknown[0], str) else repr(unknown[0])
        if not name.isprintable() or len(name) > 100:  # a message stays one short line
            name = repr(name[:100])
        key = f"{path}.{name}" if path else name
        raise ConfigError(f"unknown key {key} (allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _check(key, hints[name], value)
        if fields[name].metadata.get("deprecated"):  # still read; said once, in one line
            log.warning("%s %s", key, fields[name].metadata["deprecated"])
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(
            f"{path}.{exc}" if path and not str(exc).startswith(path) else str(exc)
        ) from None


def to_mapping(obj: Any) -> Any:
    """Dataclass -> plain dict (tuples as lists), for printing the effective config."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    return obj


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``, creating mappings on the way."""
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if nxt is None:
            nxt = cur[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a mapping")
        cur = nxt
    cur[keys[-1]] = value


def require(cond: bool, key: str, value: Any, rule: str) -> None:
    """Raise ``ConfigError('key=value rule')`` unless ``cond``; for ``__post_init__`` checks."""
    if not cond:
        raise ConfigError(f"{key}={_show(value)} {rule}")
