"""``cryozssr simulate``: under construction."""

from __future__ import annotations

from cryozssr.errors import OptionError


def simulate() -> None:
    """Under construction."""
    raise OptionError("simulate is not implemented yet")
