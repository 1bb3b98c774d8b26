"""``cryozssr demo``: under construction."""

from __future__ import annotations

from cryozssr.errors import OptionError


def demo() -> None:
    """Under construction."""
    raise OptionError("demo is not implemented yet")
