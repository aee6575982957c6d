"""Typed task parameters: a task's options are the fields of a frozen dataclass.

    @dataclass(frozen=True)
    class Params:
        count: int = option(3, help="pings per pair")
        probe: str = option("auto", choices=("auto", "fping"), help="...")

A Python caller builds `Params(count=5)` and gets its checks (`__post_init__` raising ValueError);
the command line makes `--count` and `--probe` from the same fields. Fields are named by where
they are defined, so two tasks sharing one params class (setup and teardown share `--replace`)
share its options, and two tasks defining the same flag differently are a usage error.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METADATA_KEY = "fleet.option"


@dataclass(frozen=True)
class Option:
    """How one params field appears on the command line."""

    help: str
    flag: str | None = None                 # default: --field-name
    choices: Sequence[str] | None = None
    metavar: str | None = None


def option(default: Any, *, help: str, flag: str | None = None,
           choices: Sequence[str] | None = None, metavar: str | None = None) -> Any:
    """A params field with a default and what the command line says of it."""
    return dataclasses.field(default=default, metadata={
        METADATA_KEY: Option(help=help, flag=flag, choices=tuple(choices) if choices else None,
                             metavar=metavar)})


@dataclass(frozen=True)
class ParamSpec:
    """One field of a params class, resolved: its flag, value type, default and owner."""

    owner: type
    name: str
    flag: str
    kind: type                 # int, float, str or bool
    optional: bool             # None is a valid value (the default means "not given")
    default: Any
    option: Option

    @property
    def key(self) -> str:
        """Where the field's value is kept among every task's values: unique per defining class."""
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"


def specs(params_class: type) -> list[ParamSpec]:
    """The command-line view of a params dataclass's fields (those made with `option`)."""
    if not dataclasses.is_dataclass(params_class):
        raise TypeError(f"{params_class!r} is not a dataclass")
    hints = typing.get_type_hints(params_class)
    found = []
    for f in dataclasses.fields(params_class):
        meta = f.metadata.get(METADATA_KEY)
        if meta is None:
            continue
        kind, optional = _value_type(hints[f.name], params_class, f.name)
        owner = next(c for c in reversed(params_class.__mro__)
                     if f.name in getattr(c, "__dataclass_fields__", {}))
        found.append(ParamSpec(owner=owner, name=f.name, flag=meta.flag or "--" + f.name.replace("_", "-"),
                               kind=kind, optional=optional, default=f.default, option=meta))
    return found


def _value_type(hint: Any, params_class: type, name: str) -> tuple[type, bool]:
    args = typing.get_args(hint)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            hint, optional = rest[0], True
    if hint in (int, float, str, bool):
        return hint, optional
    raise TypeError(f"{params_class.__qualname__}.{name}: a task option must be int, float, str or "
                    f"bool (or one of them | None), not {hint!r}")


def build(params_class: type, values: Mapping[str, Any]) -> Any:
    """An instance of `params_class` from values keyed by field name; its checks run."""
    names = {f.name for f in dataclasses.fields(params_class)}
    return params_class(**{k: v for k, v in values.items() if k in names})


def coerce(params_class: type, given: Any) -> Any:
    """A caller's params for a task: an instance as it is, a mapping of field values, or None
    (the defaults)."""
    if given is None:
        return params_class()
    if isinstance(given, params_class):
        return given
    if isinstance(given, Mapping):
        unknown = set(given) - {f.name for f in dataclasses.fields(params_class)}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} for "
                             f"{params_class.__qualname__}")
        return params_class(**given)
    raise TypeError(f"expected {params_class.__qualname__} or a mapping, not {type(given).__name__}")


__all__ = ["Option", "ParamSpec", "build", "coerce", "option", "specs"]
