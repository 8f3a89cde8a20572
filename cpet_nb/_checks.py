"""Argument checks shared by every layer, so that a bad value is refused in the same words."""

from __future__ import annotations

from collections.abc import Iterable


def check_choice(value: object, choices: Iterable[str], name: str) -> None:
    """Raise ``ValueError("<name> must be one of a, b; got 'x'")`` unless ``value`` is one of
    ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
