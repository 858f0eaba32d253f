"""Small argument checks shared by the constructors, so every error names the bad value and the allowed ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._errors import ConfigError


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(
            f"{name}={value!r} is not allowed; choose one of {', '.join(repr(a) for a in allowed)}"
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int and not a bool (``True`` is an int to Python, never a count here).

    Args:
        value: anything.

    Returns:
        True for an int that is not a bool.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def check_opt_int(name: str, value: Any, *, minimum: int | None = None) -> int | None:
    return None if value is None else check_int(name, value, minimum=minimum)


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    if not is_int(value):
        raise ConfigError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_non_negative_int(name: str, value: Any) -> int:
    """A seed or an epoch: an int >= 0.

    Args:
        name: the argument's name, for the message.
        value: its value.

    Returns:
        ``value``.

    Raises:
        ConfigError: not an int (a bool is not), or negative.
    """
    if not is_int(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative int, got {value!r}")
    return value


def check_index(name: str, value: Any, size: int) -> int:
    """A position among ``size`` things (a rank among ``world_size`` ranks): an int in ``[0, size)``.

    Args:
        name: the argument's name, for the message.
        value: its value.
        size: how many positions there are.

    Returns:
        ``value``.

    Raises:
        ConfigError: not an int (a bool is not), or outside ``[0, size)``.
    """
    if not is_int(value) or not 0 <= value < size:
        raise ConfigError(f"{name} must be in [0, {size}), got {value!r}")
    return value


def check_positive_float(
    name: str, value: Any, *, allow_none: bool = False, what: str = "a positive number"
) -> float | None:
    if value is None and allow_none:
        return None
    if not (is_int(value) or isinstance(value, float)) or not value > 0:
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any) -> float:
    """A share of something: a number in ``[0, 1]``.

    Args:
        name: the argument's name, for the message.
        value: its value.

    Returns:
        ``value`` as a float.

    Raises:
        ConfigError: not an int or float (a bool is not), or outside ``[0, 1]`` (NaN included).
    """
    if not (is_int(value) or isinstance(value, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return float(value)
