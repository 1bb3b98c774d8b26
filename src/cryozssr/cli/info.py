"""``cryozssr info``: describe movies (being implemented under the foundation issue)."""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.errors import OptionError


def info(movies: list[Path] = typer.Argument(..., help="Movie files.")) -> None:
    """Describe movies."""
    raise OptionError("info is not implemented yet")
