"""YAML configs -> typed dataclasses, validated on the way in.

One reader for every recipe of both packages: ``load_config(RecipeConfig, "configs/recipes/...yaml",
overrides=["train.max_steps=10"])``. Nested sections are nested dataclasses. A key that the
dataclass does not have is an error that names the dotted key and lists the allowed keys; a
value of the wrong type is an error that names the key, the value and the expected type. The
checks of each dataclass's ``__post_init__`` run too, and their errors are prefixed with the
section they come from.

YAML is only read here; everything below a recipe takes plain typed arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["ConfigError", "from_dict", "load_config", "apply_overrides", "to_dict", "check_field_types"]


class ConfigError(ValueError):
    """A config file (or override) that does not fit its dataclass."""


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to ``tp`` (dataclasses built recursively), or a ``ConfigError``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def wrong() -> ConfigError:
        hint = ""
        if tp is float and isinstance(value, str) and _is_number(value):
            hint = " (a number in quotes, or YAML's 3e-4, which it reads as a string: write 3.0e-4)"
        return ConfigError(
            f"key {key!r}: value {value!r} ({_type_name(type(value))}) is not of the expected type {_type_name(tp)}"
            f"{hint}."
        )

    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # a section built in Python
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"key {key!r}: expected a mapping of {tp.__name__} keys, got {value!r}.")
        return from_dict(tp, value, prefix=key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(value, option, key)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise wrong()
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"key {key!r}: value {value!r} is not one of {list(args)}.")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise wrong()
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"key {key!r}: expected {len(args)} items ({_type_name(tp)}), got {value!r}.")
            return tuple(_check_value(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_check_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise wrong()
        v_type = args[1] if args else Any
        return {str(k): _check_value(v, v_type, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise wrong()
        return value
    if tp is type(None):
        if value is not None:
            raise wrong()
        return None
    raise TypeError(f"recipe_config cannot check values of type {tp!r} (key {key!r}).")  # schema bug


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_choice(tp: Any) -> bool:
    """Whether ``tp`` is a ``Literal`` (optionally ``| None``): a wrong value is a value error, not a type error."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(_is_choice(a) for a in typing.get_args(tp) if a is not type(None))
    return typing.get_origin(tp) is Literal


def check_field_types(instance: Any) -> None:
    """Check (in ``__post_init__``) that every field of the dataclass ``instance`` holds a value of its
    annotated type; ints given for floats become floats. A ``TypeError`` names the field, the value
    and the expected type (a ``ValueError`` the allowed values, for a ``Literal`` field), so that a
    config built in Python fails here and not deep inside a library."""
    cls = type(instance)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        try:
            value = _check_value(getattr(instance, f.name), hints[f.name], f"{cls.__name__}.{f.name}")
        except ConfigError as err:
            text = str(err)
            if text.startswith("key '"):  # "key 'TrainConfig.x': value ..." -> "TrainConfig.x: value ..."
                key, _, rest = text[len("key '"):].partition("': ")
                text = f"{key}: {rest}"
            raise (ValueError if _is_choice(hints[f.name]) else TypeError)(text) from None
        if isinstance(value, float) and not isinstance(getattr(instance, f.name), float):
            setattr(instance, f.name, value)


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (YAML) mapping, checking every key and type.

    prefix: dotted position of this section in the whole config (for error messages).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"under {prefix!r}" if prefix else "at the top level"
            raise ConfigError(f"unknown key {dotted!r}{hint}; allowed keys {where}: {sorted(fields)}.")
        kwargs[key] = _check_value(value, hints[key], dotted)
    missing = [
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f" under {prefix!r}" if prefix else ""
        raise ConfigError(f"missing required key(s) {[f'{prefix}.{m}' if prefix else m for m in missing]}{where}.")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{prefix or cls.__name__}: {err}") from None


def _parse_override(item: str) -> tuple[list[str], Any]:
    import yaml

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} must look like key.subkey=value (e.g. train.max_steps=100).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({err}).") from None
    return key.split("."), value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``key.subkey=value`` overrides applied (values parsed as YAML)."""
    import copy

    result: dict[str, Any] = copy.deepcopy(dict(data))
    for item in overrides:
        path, value = _parse_override(item)
        node = result
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(path[: i + 1])!r} is a value, not a section.")
            node = child
        node[path[-1]] = value
    return result


def load_config(cls: type, path: str | os.PathLike, overrides: Iterable[str] = ()) -> Any:
    """Read a YAML file into dataclass ``cls``; errors start with the file name."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys (`key: value` lines at the top level), "
                          f"but it holds a {_type_name(type(data))}: {_short(data)}.")
    try:
        return from_dict(cls, apply_overrides(data, overrides))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML/JSON-ready data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
