"""Typed, frozen configuration dataclasses with strict JSON round trips (unknown keys raise)."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from enum import Enum
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


ZERO_ALLOWED = (".transpose", ".dense_blocks", ".styles")  # integer fields that may be 0 (none of them)
AT_MOST_ONE = (".ema_decay", ".beta_rate", ".lr_decay")  # decay factors
ABOVE_ZERO = (".lr", ".grad_clip")  # 0 would train nothing


def check_transformer_sizes(config: Any) -> None:
    """The sizes of a transformer config (``width``, ``heads``, ... as DenoiserConfig, MDNConfig): every integer
    positive (but ZERO_ALLOWED), an even ``width`` that ``heads`` divides (sinusoidal positions, attention)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        small = 0 if f".{f.name}" in ZERO_ALLOWED else 1
        if isinstance(value, int) and not isinstance(value, bool) and value < small:
            raise MelodiffError(f"{type(config).__name__}.{f.name} must be positive, got {value}")
    if config.width % 2 or config.width % config.heads:
        raise MelodiffError(f"{type(config).__name__}: width {config.width} must be even and divisible by heads "
                            f"{config.heads}")


def apply_settings(sections: dict[str, Any], settings: Sequence[str], fixed: Sequence[str] = ()) -> dict[str, Any]:
    """``sections`` (name -> config dataclass) with command-line settings ``section.field=value`` applied, e.g.
    ``train.max_beta=0.05`` or ``model.z_size=64``. Values are parsed by the field's type; numbers must be finite and
    not negative, integers positive (but ZERO_ALLOWED), decay factors at most 1, lr and grad_clip above 0. All the
    settings of a section are applied at once. ``fixed``: ``section.field`` names the data decides, which
    cannot be set."""
    changes: dict[str, dict[str, Any]] = {}
    for section, name, value in _parse_settings(sections, settings, fixed):
        changes.setdefault(section, {})[name] = value
    return {name: dataclasses.replace(config, **changes[name]) if name in changes else config
            for name, config in sections.items()}


def check_settings(sections: dict[str, Any], settings: Sequence[str], fixed: Sequence[str] = ()) -> None:
    """Raise unless every setting already holds in ``sections`` (a resumed run keeps the configs it was made with)."""
    for section, name, value in _parse_settings(sections, settings, fixed):
        saved = getattr(sections[section], name)
        if saved != value:
            raise MelodiffError(f"--set {section}.{name}={_shown(value)}: the run being resumed has {_shown(saved)}; "
                                f"a run keeps its settings, use a new --out")


def _shown(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _parse_settings(sections: dict[str, Any], settings: Sequence[str],
                    fixed: Sequence[str]) -> list[tuple[str, str, Any]]:
    parsed = []
    for setting in settings:
        key, sep, text = setting.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in sections:
            raise MelodiffError(f"--set {setting!r}: expected SECTION.FIELD=VALUE with SECTION one of "
                                f"{', '.join(sections)}")
        fields = {f.name for f in dataclasses.fields(sections[section])}
        if name not in fields or key.strip() in fixed:
            settable = sorted(f"{section}.{f}" for f in fields if f"{section}.{f}" not in fixed)
            where = f"{section} has {', '.join(settable)}" if settable else f"nothing in {section} can be set here"
            raise MelodiffError(f"--set {setting!r}: unknown or fixed field; {where}")
        hint = typing.get_type_hints(type(sections[section]))[name]
        parsed.append((section, name, _parse_value(f"{section}.{name}", hint, text.strip())))
    return parsed


def _parse_value(key: str, hint: Any, text: str) -> Any:
    try:
        if hint is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if hint in (int, float):
            value = hint(text)
            low = 1 if hint is int and not key.endswith(ZERO_ALLOWED) else 0  # counts and sizes: at least one
            if (not math.isfinite(value) or value < low or (key.endswith(AT_MOST_ONE) and value > 1)
                    or (key.endswith(ABOVE_ZERO) and value == 0)):
                raise MelodiffError(f"--set {key}={text}: out of range")
            return value
        if isinstance(hint, type) and issubclass(hint, Enum):
            return _coerce(hint, text)
        if hint is str:
            return text
    except ValueError:
        raise MelodiffError(f"--set {key}={text}: not a valid {getattr(hint, '__name__', hint)}") from None
    raise MelodiffError(f"--set {key}: this field cannot be set from the command line")


# The most parameters (and buffer elements) a model built from settings may have: 4 GB of float32 weights, and
# Adam's two moments on top. The paper's models have tens of millions; far more is a typo (--set model.width=1e8).
MAX_PARAMETERS = 1_000_000_000


def build_checked(build: Callable[[], T], max_parameters: int = MAX_PARAMETERS) -> T:
    """``build()`` (a model from configs that may come from ``--set``), with what the configs' own checks do not
    catch reported as a MelodiffError instead of a traceback. The model is first built on the meta device (shapes
    only: no memory, and the random generator is left untouched), so one too large (more than ``max_parameters``)
    is refused before gigabytes are allocated for it."""
    import torch

    try:
        with torch.device("meta"):
            shape = build()
        if isinstance(shape, torch.nn.Module):
            size = sum(t.numel() for t in (*shape.parameters(), *shape.buffers()))
            if size > max_parameters:
                raise MelodiffError(f"these settings make a model of {size:.3g} parameters, more than the "
                                    f"{max_parameters:.3g} allowed")
        del shape
        return build()
    except (AssertionError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MelodiffError(f"these settings do not make a valid model: {why}") from None
