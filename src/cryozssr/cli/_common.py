"""What the commands share: logging to stderr, progress bars, the console, the saved command line."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cryozssr.errors import CryoZssrError

T = TypeVar("T")

# results (tables) go to stdout; wide when redirected to a file, so tables are not folded
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)  # logs and progress go to stderr


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``cryozssr`` library logs to stderr through rich (idempotent)."""
    logger = logging.getLogger("cryozssr")
    logger.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def command_line() -> str:
    """The command line of this process, shell-quoted (saved in every run's JSON)."""
    return " ".join(shlex.quote(a) for a in ["cryozssr", *sys.argv[1:]])


def progress() -> Progress:
    """A progress display on stderr (rich prints plain lines when stderr is not a terminal)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr."""
    with progress() as bar:
        yield from bar.track(items, description=description, total=total)


FLAGS = {
    "pixel_size_angstrom": "--pixel-size",
    "gain_rot": "--gain-rot",
    "dose_per_frame_e_per_a2": "--dose-per-frame",
}
"""The command-line spelling of the library options that errors name (``CryoZssrError.option``)."""


def error_line(exc: CryoZssrError) -> str:
    """The one line a user sees: the library's message, then the flag that sets its option."""
    flag = FLAGS.get(exc.option or "")
    return f"cryozssr: error: {exc}" + (f" (set it with {flag})" if flag else "")
