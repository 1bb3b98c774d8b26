"""``cryozssr bin``: under construction."""

from __future__ import annotations

from cryozssr.errors import OptionError


def bin_movies() -> None:
    """Under construction."""
    raise OptionError("bin is not implemented yet")
