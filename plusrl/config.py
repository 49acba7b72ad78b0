"""Typed dataclass configs from YAML recipes plus `key.sub=value` overrides from the CLI.

Values are checked when loaded, before any model loads: types (`Literal` choices included), unknown
keys, and each config's own `__post_init__` checks (a ValueError there becomes a ConfigError that
names the section).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return origin(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads 3e-4 (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {value!r}") from None
    if tp is Any or (isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        return value
    if tp is str and isinstance(value, (dict, list)):  # "{summary}" unquoted is a YAML mapping
        raise ConfigError(f"{where}: expected text, got {value!r}; YAML reads braces and brackets as structure: "
                          "quote the text (key='\"{...}\"' on the command line)")
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(fields)}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as error:  # a __post_init__ check: say where it failed
        raise ConfigError(f"{where}: {error}") from None


def _set_path(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    data[leaf] = value


def read_recipe(path: Path, built_on: tuple[Path, ...] = ()) -> dict:
    """A recipe's values; one with `base: OTHER.yaml` (relative to it) is the other's values with its
    own on top, section by section."""
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"recipe {path}: expected a mapping of keys to values")
    base = loaded.pop("base", None)
    if base is None:
        return loaded
    if path.resolve() in built_on:
        raise ConfigError(f"recipe {path}: its bases lead back to itself")
    data = read_recipe(path.parent / base, (*built_on, path.resolve()))
    _merge(data, loaded, str(path))
    return data


def load_config(cls: type[T], recipe: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Defaults of `cls`, then the YAML recipe, then `a.b=value` overrides (YAML-parsed values)."""
    data = dataclasses.asdict(cls())
    if recipe is not None:
        _merge(data, read_recipe(Path(recipe)), str(recipe))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key.subkey=value")
        _set_path(data, key.strip(), yaml.safe_load(raw))
    return from_dict(cls, data)


def _merge(base: dict, new: dict, where: str) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, f"{where}:{key}")
        else:
            base[key] = value


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)


def field_docs(cls: type) -> dict[str, str]:
    """The documentation of each field of a dataclass: the string literal under its line (the
    attribute docstrings of PEP 257), from the class and the classes it builds on."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for statement, following in zip(body, body[1:]):
            if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def describe(config: Any, prefix: str = "") -> list[str]:
    """Every field of a config, as `section.field = value` with its documentation, and its default
    where the value differs from it; sections are described in turn."""
    import textwrap

    cls, lines = type(config), []
    docs, defaults = field_docs(cls), cls()
    nested = []
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, value))
            continue
        shown = f"{prefix}{f.name} = {value!r}" + ("" if value == default else f"   (default {default!r})")
        lines.append(shown)
        if f.name in docs:
            lines += textwrap.wrap(docs[f.name], 96, initial_indent="    ", subsequent_indent="    ")
    for name, value in nested:
        lines += ["", f"[{prefix}{name}]" + (f"  {docs[name]}" if name in docs else "")]
        lines += describe(value, f"{prefix}{name}.")
    return lines
