"""On the fly: follow folders or globs while EPU / SerialEM write a session, process each movie once.

A movie is taken only when its size and modification time have not changed over
``stable_seconds`` of this process's own observations (as Scipion's and MotionCor's streaming
modes do), so a file still being written or copied is never read. Choose ``stable_seconds`` longer
than the writer's longest pause (a network copy that stalls for a minute needs more than a
minute). Hidden files (rsync's ``.name.XXXXXX``, our own temporaries) are ignored. Each taken
movie goes through :func:`~cryozssr.pipeline.runner.run_batch`, so the manifest and the STAR files
are updated after every movie and a restarted watch skips what is done. The watch stops after
``idle_seconds`` with no new movie, or when ``stop_file`` appears.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryozssr.errors import OptionError
from cryozssr.io import MOVIE_EXTENSIONS
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.runner import BatchOptions, BatchSummary, MovieOutcome, run_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchConfig:
    """``stable_seconds``: unchanged size and mtime before a movie is taken; ``poll_seconds``:
    how often folders are listed; ``idle_seconds``: stop after this long with no new movie;
    ``stop_file``: stop when it exists (default ``<out>/STOP``)."""

    stable_seconds: float = 30.0
    poll_seconds: float = 5.0
    idle_seconds: float = 3600.0
    stop_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.stable_seconds >= 0 or not self.poll_seconds > 0 or not self.idle_seconds > 0:
            raise OptionError("--stable-seconds must be >= 0, the poll and --idle-seconds > 0")


def list_candidates(inputs: Sequence[str]) -> list[Path]:
    """Movie files currently matching folders, globs or file names (none yet is not an error)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(p for p in path.iterdir() if p.suffix.lower() in MOVIE_EXTENSIONS)
        elif glob.has_magic(item):
            found.extend(Path(p) for p in glob.glob(item))
        elif path.exists():
            found.append(path)
    return sorted(
        {p for p in found if p.is_file() and not p.name.startswith(".")}, key=lambda p: str(p)
    )


def watch_batch(
    inputs: Sequence[str],
    cfg: RunConfig,
    out_dir: Path,
    *,
    watch: WatchConfig = WatchConfig(),
    options: BatchOptions = BatchOptions(),
    command_line: str = "",
    on_outcome: Callable[[MovieOutcome, BatchSummary], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchSummary:
    """Process movies as they appear under ``inputs`` until idle or stopped; one summary for all."""
    stop_file = watch.stop_file or out_dir / "STOP"
    seen: dict[Path, tuple[tuple[int, int], float]] = {}  # path -> ((size, mtime), since)
    taken: set[Path] = set()
    summary = BatchSummary()
    last_new = clock()
    while True:
        if stop_file.exists():
            log.info("stop file %s found: stopping", stop_file)
            break
        now = clock()
        ready = []
        for path in list_candidates(inputs):
            if path in taken:
                continue
            try:
                st = path.stat()
            except OSError:  # moved away between listing and stat
                continue
            state = (st.st_size, st.st_mtime_ns)
            if path not in seen or seen[path][0] != state:
                seen[path] = (state, now)
                last_new = now
                continue
            if st.st_size > 0 and now - seen[path][1] >= watch.stable_seconds:
                ready.append(path)
        if ready:
            taken.update(ready)
            summary.total += len(ready)
            part = run_batch(
                ready,
                cfg,
                out_dir,
                options=options,
                command_line=command_line,
                on_outcome=lambda o, _s: on_outcome(o, summary) if on_outcome else None,
                on_progress=on_progress,
                should_stop=stop_file.exists,
            )
            summary.outcomes.extend(part.outcomes)
            last_new = clock()
            continue
        if now - last_new >= watch.idle_seconds:
            log.info("no new movie for %.0f s: stopping", watch.idle_seconds)
            break
        sleep(watch.poll_seconds)
    return summary
