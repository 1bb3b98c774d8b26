"""``cryozssr evaluate``: under construction."""

from __future__ import annotations

from cryozssr.errors import OptionError


def evaluate() -> None:
    """Under construction."""
    raise OptionError("evaluate is not implemented yet")
