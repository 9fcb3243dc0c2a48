"""Settings declared once: the flags, their defaults and their checks come from the config dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from posttrain.errors import PosttrainError
from posttrain.recipes.dpo import DPOConfig
from posttrain.recipes.rl import RLConfig
from posttrain.recipes.sft import SFTConfig
from posttrain.settings import (
    add_flags,
    at_least,
    check_settings,
    overrides,
    positive_finite,
    setting,
    settings_of,
)


@dataclass
class Example:
    batch_size: int = setting(8, "rows per step", flag="--batch-size", kind=int, check=at_least(1))
    lr: float = setting(1e-3, "learning rate", flag="--lr", kind=float, check=positive_finite)
    mode: str = setting("a", "mode", flag="--mode", choices=("a", "b"))
    quiet: bool = setting(False, "no output", flag="--quiet", action="store_true")
    hidden: float = setting(0.5, "no flag for this one", check=at_least(0))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_flags(p, Example)
    return p


def test_flags_come_from_the_fields_and_leave_unset_values_to_the_config():
    args = _parser().parse_args(["--batch-size", "3", "--mode", "b"])
    assert overrides(args, Example) == {"batch_size": 3, "mode": "b"}
    assert Example(**overrides(args, Example)) == Example(batch_size=3, mode="b")
    assert "--hidden" not in _parser().format_help()
    assert "rows per step" in _parser().format_help()


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--batch-size", "x"], "argument --batch-size: expected an integer, got 'x'"),
    (["--lr", "inf"], "argument --lr: must be a positive finite number, got inf"),
    (["--mode", "c"], "argument --mode: invalid choice: 'c'"),
])
def test_the_cli_refuses_a_bad_value_while_parsing(argv, message):
    with pytest.raises(argparse.ArgumentError) as err:
        _parser().parse_args(argv)
    assert message in str(err.value)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("batch_size", 0, "batch_size must be at least 1, got 0"),
    ("lr", -1.0, "lr must be a positive finite number, got -1.0"),
    ("mode", "c", "mode must be one of a, b, got 'c'"),
    ("hidden", -0.5, "hidden must be at least 0, got -0.5"),
])
def test_the_library_refuses_the_same_values_in_the_same_words(field, value, message):
    with pytest.raises(PosttrainError, match=message):
        check_settings(Example(**{field: value}))


@pytest.mark.parametrize("cls", [SFTConfig, DPOConfig, RLConfig])
def test_every_recipe_setting_is_declared_with_help(cls):
    declared = {f.name for f, _ in settings_of(cls)}
    missing = {f for f in cls.__dataclass_fields__ if f not in declared} - {"recipe"}
    assert not missing, f"{cls.__name__}: fields without a setting: {sorted(missing)}"
    assert all(s.help for _, s in settings_of(cls))
    check_settings(cls())  # the defaults pass their own checks
