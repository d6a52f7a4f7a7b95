"""Typed, frozen configuration dataclasses with strict JSON round trips (unknown keys raise)."""

from __future__ import annotations

import dataclasses
import json
import typing
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from melodiff.errors import MelodiffError

T = TypeVar("T")


def to_dict(config: Any) -> dict:
    """A dataclass (nested dataclasses, tuples, Enums allowed) as a JSON-ready dict."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def from_dict(cls: type[T], data: dict) -> T:
    """Rebuild ``cls`` from ``to_dict`` output. Unknown keys raise MelodiffError; missing keys take defaults."""
    if not isinstance(data, dict):
        raise MelodiffError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise MelodiffError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise MelodiffError(f"{hint.__name__}: unknown value {value!r}, use one of "
                                f"{', '.join(repr(m.value) for m in hint)}") from None
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def save_json(config: Any, path: str | Path) -> None:
    from melodiff.utils.io import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(config), indent=2))


def load_json(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))
