"""``cryozssr run``: under construction."""

from __future__ import annotations

from cryozssr.errors import OptionError


def run() -> None:
    """Under construction."""
    raise OptionError("run is not implemented yet")
