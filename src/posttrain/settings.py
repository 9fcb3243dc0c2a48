"""Settings declared once: a config dataclass's field carries its default, its help, its command-line
flag and its check, and everything else is generated from it — the CLI's flags (:func:`add_flags`),
the library's validation (:func:`check_settings`), and the overrides a command passes (:func:`overrides`).

::

    @dataclass
    class Config:
        batch_size: int = setting(8, "conversations per step", flag="--batch-size", kind=int, check=at_least(1))

A bad value is refused in the same words on both paths: ``argument --batch-size: must be at least 1, got 0``
from the CLI while parsing, ``batch_size must be at least 1, got 0`` from :func:`check_settings`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import Any

from posttrain.errors import PosttrainError

#: A value → what is wrong with it ("must be at least 1, got 0"), or None.
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Setting:
    help: str
    flag: str | None = None  # None: a library setting with no flag
    kind: Callable[[str], Any] | None = None  # parses the flag's text (str if None)
    check: Check | None = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    action: str | None = None  # "store_true" / "store_false" flags take no value


def setting(default: Any, help: str, *, flag: str | None = None, kind: Callable[[str], Any] | None = None,
            check: Check | None = None, choices: Sequence[str] | None = None, metavar: str | None = None,
            action: str | None = None) -> Any:
    """A dataclass field with its setting (see the module's doc)."""
    meta = {"setting": Setting(help, flag, kind, check, choices, metavar, action)}
    if isinstance(default, list | dict | set):
        raise TypeError("use an immutable default (a tuple) for a setting")
    return field(default=default, metadata=meta)


def at_least(low: int | float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"must be at least {low}, got {value}"

    return check


def positive_finite(value: Any) -> str | None:
    return None if value > 0 and math.isfinite(value) else f"must be a positive finite number, got {value}"


def non_empty(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


def settings_of(cls: type) -> list[tuple[Field[Any], Setting]]:
    return [(f, f.metadata["setting"]) for f in fields(cls) if "setting" in f.metadata]


def check_settings(cfg: Any) -> None:
    """Every setting's check on ``cfg``'s values (None is an unset optional and passes)."""
    for f, s in settings_of(type(cfg)):
        value = getattr(cfg, f.name)
        problem = None
        if value is not None and s.choices is not None and value not in s.choices:
            problem = f"must be one of {', '.join(s.choices)}, got {value!r}"
        elif value is not None and s.check is not None:
            problem = s.check(value)
        if problem:
            raise PosttrainError(f"{f.name} {problem}")


def _parser(s: Setting) -> Callable[[str], Any]:
    kind = s.kind or str

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (TypeError, ValueError) as err:
            noun = "an integer" if kind is int else "a number" if kind is float else None
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}" if noun else str(err)) from None
        problem = s.check(value) if s.check is not None else None
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def add_flags(parser: argparse.ArgumentParser, cls: type, exclude: Sequence[str] = ()) -> None:
    """One flag per setting of ``cls`` that has one; every flag defaults to None (not given), so the
    command's recipe keeps its value — except a ``store_false`` switch, which is on unless given."""
    for f, s in settings_of(cls):
        if s.flag is None or f.name in exclude:
            continue
        if s.action is not None:  # a store_false flag (--quiet) means True when absent
            parser.add_argument(s.flag, dest=f.name, action=s.action, default=True if s.action == "store_false"
                                else None, help=s.help)
        else:
            parser.add_argument(s.flag, dest=f.name, type=_parser(s), choices=s.choices, metavar=s.metavar,
                                default=None, help=s.help)


def overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The settings of ``cls`` given on the command line."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}
