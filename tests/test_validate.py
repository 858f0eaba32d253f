"""The shared argument checks: what each accepts, and errors that name the argument and the bad value."""

from __future__ import annotations

import pytest

import vidloader as vl
from vidloader._validate import (
    check_bool,
    check_choice,
    check_index,
    check_int,
    check_non_negative_int,
    check_opt_int,
    check_positive_float,
    is_int,
)


def test_is_int_refuses_bools_and_floats() -> None:
    assert is_int(0) and is_int(-3) and is_int(2**70)
    assert not is_int(True) and not is_int(False) and not is_int(1.0) and not is_int("1")


def test_check_bool() -> None:
    assert check_bool("flag", True) is True and check_bool("flag", False) is False
    for bad in (1, 0, None, "yes"):
        with pytest.raises(vl.ConfigError, match=rf"flag must be True or False, got {bad!r}"):
            check_bool("flag", bad)


def test_check_int_and_opt_int() -> None:
    assert check_int("n", 3, minimum=3) == 3 and check_opt_int("n", None, minimum=1) is None
    with pytest.raises(vl.ConfigError, match="n must be an int, got True"):
        check_int("n", True)
    with pytest.raises(vl.ConfigError, match="n must be >= 1, got 0"):
        check_opt_int("n", 0, minimum=1)


def test_check_non_negative_int() -> None:
    assert check_non_negative_int("seed", 0) == 0
    for bad in (-1, True, 1.5, None):
        with pytest.raises(vl.ConfigError, match=rf"seed must be a non-negative int, got {bad!r}"):
            check_non_negative_int("seed", bad)


def test_check_index() -> None:
    assert check_index("rank", 0, 1) == 0 and check_index("rank", 2, 3) == 2
    for bad in (-1, 3, False, 1.0):
        with pytest.raises(vl.ConfigError, match=rf"rank must be in \[0, 3\), got {bad!r}"):
            check_index("rank", bad, 3)


def test_check_choice_and_positive_float() -> None:
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(vl.ConfigError, match="mode='c' is not allowed; choose one of 'a', 'b'"):
        check_choice("mode", "c", ("a", "b"))
    assert (
        check_positive_float("fps", 2) == 2.0 and check_positive_float("fps", None, allow_none=True) is None
    )
    for bad in (0, -1.0, True, None, "1"):
        with pytest.raises(vl.ConfigError, match="fps must be a positive number"):
            check_positive_float("fps", bad)
