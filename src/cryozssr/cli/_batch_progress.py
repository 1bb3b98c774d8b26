"""Batch progress a facility can watch: a rich bar in a terminal, plain timed lines in a cluster log.

Both show done / failed / movies per hour / ETA; every line also goes to the run's log file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cryozssr.cli._common import err_console

log = logging.getLogger("cryozssr.cli.run")
#: Lines for the run's log file only (failures and the summary, which stderr shows as errors).
file_only = logging.getLogger("cryozssr_run_file")
file_only.propagate = False
file_only.setLevel(logging.INFO)

#: Within one movie, a non-terminal log gets a progress line at most this often.
PLAIN_STAGE_INTERVAL_SECONDS = 60.0


@contextlib.contextmanager
def log_file(out_dir: Path, command: str) -> Iterator[Path]:
    """A per-run log file ``<out>/logs/run-<UTC time>-<pid>.log`` receiving every cryozssr log line."""

    folder = out_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"run-{stamp}-{os.getpid()}.log"
    path.write_text(f"{command}\n")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("cryozssr")
    logger.addHandler(handler)
    file_only.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        file_only.removeHandler(handler)
        handler.close()


class BatchProgress:
    """Call :meth:`outcome` after each movie and :meth:`stage` within one (serial runs only)."""

    def __init__(self, total: int, already: int, *, label: str):
        self.total, self.already, self.label = total, already, label
        self.done = self.failed = 0
        self.t0 = time.monotonic()
        self._last_stage = 0.0
        self.tty = err_console.is_terminal
        self._bar: Progress | None = None

    def __enter__(self) -> BatchProgress:
        if self.tty:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=err_console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.label, total=self.total, completed=self.already, stats=""
            )
            self._stage = self._bar.add_task("", total=None, visible=False, stats="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def _rate(self) -> tuple[float, str]:
        hours = (time.monotonic() - self.t0) / 3600
        finished = self.done + self.failed
        per_hour = finished / hours if hours > 0 and finished else 0.0
        left = self.total - self.already - finished
        eta = "--:--:--"
        if per_hour > 0:
            eta = time.strftime("%H:%M:%S", time.gmtime(3600 * left / per_hour))
        return per_hour, eta

    def set_already(self, already: int) -> None:
        """Movies found done before this run (known once the folder is checked)."""
        self.already = already
        if self._bar is not None:
            self._bar.update(self._task, completed=already)

    def set_total(self, total: int) -> None:
        """A watched session grows: the total is what has been found so far."""
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def outcome(self, stem: str, state: str, reason: str, seconds: float) -> None:
        if state == "done":
            self.done += 1
        elif state == "failed":
            self.failed += 1
        per_hour, eta = self._rate()
        stats = f"{self.already + self.done} done, {self.failed} failed, {per_hour:.1f} movies/h"
        what = f"{stem}: {state}" + (f" in {seconds:.1f} s" if state == "done" else "")
        if self._bar is not None:
            self._bar.update(self._task, advance=1, stats=stats)
            self._bar.update(self._stage, visible=False)
            if state != "failed":
                self._bar.console.print(what, markup=False, highlight=False)
            file_only.info("%s; %s%s", what, stats, f": {reason}" if reason else "")
        else:
            n = self.already + self.done + self.failed
            line = f"[{n}/{self.total}] {what}; {stats}, ETA {eta}"
            if state == "failed":
                file_only.error("%s: %s", line, reason)
            else:
                log.info("%s", line)

    def stage(self, description: str, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(
                self._stage,
                description=f"  {description}",
                completed=done,
                total=total,
                visible=True,
            )
            return
        now = time.monotonic()
        if now - self._last_stage >= PLAIN_STAGE_INTERVAL_SECONDS or done == total:
            self._last_stage = now
            log.info("  %s: %d/%d", description, done, total)
