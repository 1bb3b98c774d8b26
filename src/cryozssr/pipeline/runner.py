"""The batch runner: many movies into one output folder, resumable, shareable, spread over workers.

:func:`run_batch` is what ``cryozssr run``, ``cryozssr relion-external``, the watch mode and the demo
call. Each movie is one :class:`MovieJob`, run by :func:`run_movie_job` in this process, in a local
process pool (``workers > 1``) or on a Dask cluster (``dask_address``): the job claims the movie,
processes it, and records the outcome in the manifest (:mod:`cryozssr.pipeline.manifest`), which
also rewrites the STAR files. So every engine writes the same files, and a killed run resumes.
In this process, the next movie's file is read in the background while a movie is processed
(:mod:`cryozssr.io.prefetch`): disk or network storage and compute overlap.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cryozssr.errors import CryoZssrError, OptionError
from cryozssr.io.prefetch import prefetch_file
from cryozssr.pipeline import manifest as mf
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.movie import movie_stem, output_names

log = logging.getLogger(__name__)

#: Exit statuses of a batch (``cryozssr run``): all movies done; usage error, bad input or every
#: movie failed; some movies done and some failed.
EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 2, 3


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (not what it computes: that is :class:`RunConfig`).

    redo:
        Redo movies recorded with another configuration instead of refusing the folder.
    verify:
        Re-hash every done movie's outputs (SHA-256) rather than compare sizes and times.
    fail_fast:
        Stop at the first failed movie (the default records it and goes on).
    workers:
        Local worker processes (1: in this process).
    dask_address:
        An existing Dask scheduler (``tcp://host:8786``): one movie per task.
    gpus_per_task:
        With Dask: the ``GPU`` worker resource each task asks for (0: none).
    threads:
        torch threads in every worker; ``None`` keeps torch's default. Part of the determinism
        promise: same seed, device and thread count -> same bytes.
    """

    redo: bool = False
    verify: bool = False
    fail_fast: bool = False
    workers: int = 1
    dask_address: str | None = None
    gpus_per_task: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise OptionError(f"--workers {self.workers}: must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"--threads {self.threads}: must be at least 1")
        if self.dask_address and self.workers > 1:
            raise OptionError(
                "--workers and --dask exclude each other (Dask sizes its own workers)"
            )


@dataclass(frozen=True)
class MovieJob:
    """Everything a worker needs to process one movie (picklable)."""

    path: Path
    cfg: RunConfig
    out_dir: Path
    fingerprint: str
    protect: tuple[Path, ...] = ()
    command_line: str = ""
    threads: int | None = None

    @property
    def stem(self) -> str:
        return movie_stem(self.path)


@dataclass(frozen=True)
class MovieOutcome:
    """``state``: ``done`` (now), ``already`` (done before), ``failed`` or ``elsewhere`` (claimed
    by another process)."""

    stem: str
    state: str
    reason: str = ""
    seconds: float = 0.0


@dataclass
class BatchSummary:
    outcomes: list[MovieOutcome] = field(default_factory=list)
    total: int = 0

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def failed(self) -> list[MovieOutcome]:
        return [o for o in self.outcomes if o.state == "failed"]

    @property
    def exit_status(self) -> int:
        if not self.failed:
            return EXIT_OK
        return EXIT_PARTIAL if self.count("done") + self.count("already") else EXIT_FAILED

    def line(self, *, max_reasons: int = 3) -> str:
        """``"6 movies: 5 done (2 already), 1 failed (b: reason)"``: the final summary."""
        n_done, n_already = self.count("done"), self.count("already")
        text = f"{self.total} movies: {n_done + n_already} done"
        if n_already:
            text += f" ({n_already} already)"
        failed = self.failed
        text += f", {len(failed)} failed"
        if failed:
            reasons = "; ".join(o.reason for o in failed[:max_reasons])
            more = f"; and {len(failed) - max_reasons} more" if len(failed) > max_reasons else ""
            text += f" ({reasons}{more})"
        if self.count("elsewhere"):
            text += f", {self.count('elsewhere')} being processed by another process"
        if self.total > len(self.outcomes):
            text += f", {self.total - len(self.outcomes)} not started"
        return text


@functools.lru_cache(maxsize=2)
def _gain(path: str, rot: int, flip: int) -> torch.Tensor:
    from cryozssr.io import read_gain
    from cryozssr.pipeline.sanity import check_gain

    gain = read_gain(path, rot=rot, flip=flip)
    check_gain(gain, name=Path(path).name)
    return gain


def _reason(path: Path, exc: BaseException) -> str:
    """One line naming the movie."""
    text = " ".join(str(exc).split())
    return text if path.name in text else f"{path.name}: {text}"


def _cleanup(
    out_dir: Path, names: Sequence[str], protect: Sequence[Path], *, outputs: bool
) -> None:
    """Remove temporary files a killed writer left for these outputs (and the outputs themselves)."""
    guarded = {p.resolve() for p in protect}
    for name in names:
        doomed = list(out_dir.glob(f".{name}.*.tmp"))
        if outputs:
            doomed.append(out_dir / name)
        for path in doomed:
            if path.resolve() not in guarded:
                path.unlink(missing_ok=True)


def run_movie_job(
    job: MovieJob, on_progress: Callable[[str, int, int], None] | None = None
) -> MovieOutcome:
    """Claim, process and record one movie. Never raises for a bad movie: it is a ``failed`` outcome."""
    from cryozssr.pipeline.movie import process_movie
    from cryozssr.pipeline.star import write_star_files

    if job.threads:
        torch.set_num_threads(job.threads)
    out, stem, cfg = job.out_dir, job.stem, job.cfg
    names = output_names(stem, cfg)
    with mf.claim(out, stem) as mine:
        if not mine:
            return MovieOutcome(stem, "elsewhere")
        entry = mf.read_manifest(out)["movies"].get(stem, {})
        if entry.get("state") == "done" and entry.get("fingerprint") == job.fingerprint:
            return MovieOutcome(stem, "already")  # finished by another process meanwhile
        _cleanup(out, names, job.protect, outputs=False)
        t0 = time.perf_counter()
        try:
            gain = _gain(cfg.gain_path, cfg.gain_rot, cfg.gain_flip) if cfg.gain_path else None
            result = process_movie(
                job.path,
                cfg,
                out,
                device=cfg.device,
                gain=gain,
                protect=job.protect,
                command_line=job.command_line,
                on_progress=on_progress,
            )
            entry = {
                "state": "done",
                "input": str(job.path),
                "fingerprint": job.fingerprint,
                "outputs": {n: mf.sha256_file(out / n) for n in result.outputs},
                "stats": {n: mf.file_stat(out / n) for n in result.outputs},
                "seconds": round(result.seconds, 3),
                "torch_threads": torch.get_num_threads(),
                "host": f"{os.uname().nodename}:{os.getpid()}",
                "micrograph": result.star_row,
            }
            outcome = MovieOutcome(stem, "done", seconds=result.seconds)
        except CryoZssrError as exc:
            outcome = MovieOutcome(stem, "failed", _reason(job.path, exc), time.perf_counter() - t0)
        except Exception as exc:  # a bug must not stop 10,000 movies: record it, log the traceback
            log.debug("%s: internal error", stem, exc_info=True)  # the traceback with --verbose
            reason = _reason(job.path, RuntimeError(f"internal error {type(exc).__name__}: {exc}"))
            reason += " (please report it)"
            outcome = MovieOutcome(stem, "failed", reason, time.perf_counter() - t0)
        if outcome.state == "failed":
            _cleanup(out, names, job.protect, outputs=True)  # nothing partial that looks complete
            entry = {"state": "failed", "input": str(job.path), "reason": outcome.reason}

        def record(data: dict[str, Any]) -> None:
            data["movies"][stem] = entry

        mf.update_manifest(out, record, after=lambda data: write_star_files(out, data))
    return outcome


def prepare_batch(
    movies: Sequence[Path],
    cfg: RunConfig,
    out_dir: Path,
    *,
    options: BatchOptions,
    command_line: str = "",
) -> tuple[list[MovieJob], list[MovieOutcome]]:
    """Check the folder against the config, verify what is done; returns ``(jobs, already_done)``.

    A folder holding another configuration's results raises OptionError naming the differences,
    unless ``options.redo``. A done movie whose files are missing or changed is redone.
    """
    from cryozssr.pipeline.batch import prepare_out_dir

    prepare_out_dir(out_dir)
    gain_sha = None
    if cfg.gain_path:
        _gain(cfg.gain_path, cfg.gain_rot, cfg.gain_flip)  # a bad gain stops the batch at once
        gain_sha = mf.sha256_file(Path(cfg.gain_path))
    material = mf.fingerprint_config(cfg.to_dict(), gain_sha256=gain_sha)
    fp = mf.fingerprint(material)
    stems = {movie_stem(p): p for p in movies}
    already: list[MovieOutcome] = []

    def check(data: dict[str, Any]) -> None:
        if data["fingerprint"] not in (None, fp):
            diffs = mf.differences(data.get("config") or {}, material)
            if not options.redo:
                raise OptionError(
                    f"{out_dir} holds results of another configuration "
                    f"({'; '.join(diffs) or 'different version'}): use another --out, or --redo "
                    "to replace them"
                )
            log.warning(
                "--redo: replacing the results of another configuration (%s)", "; ".join(diffs)
            )
        data["fingerprint"], data["config"] = fp, material
        for stem in stems:
            entry = data["movies"].get(stem)
            if not entry or entry.get("state") != "done" or entry.get("fingerprint") != fp:
                continue
            problem = mf.verify_done(out_dir, entry, rehash=options.verify)
            if problem:
                log.warning("%s: %s: processing it again", stem, problem)
                data["movies"][stem] = {"state": "pending", "input": entry.get("input")}
            else:
                already.append(MovieOutcome(stem, "already"))

    mf.update_manifest(out_dir, check)
    done = {o.stem for o in already}
    protect = (*movies, *([Path(cfg.gain_path)] if cfg.gain_path else []))
    jobs = [
        MovieJob(p, cfg, out_dir, fp, tuple(protect), command_line, options.threads)
        for stem, p in stems.items()
        if stem not in done
    ]
    return jobs, already


def run_batch(
    movies: Sequence[Path],
    cfg: RunConfig,
    out_dir: Path,
    *,
    options: BatchOptions = BatchOptions(),
    command_line: str = "",
    on_outcome: Callable[[MovieOutcome, BatchSummary], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Process every movie not yet done into ``out_dir``; returns the summary (see its ``exit_status``).

    ``on_outcome`` is called in this process after each movie; ``on_progress`` (within one
    movie's method) only when the movies run in this process. ``should_stop`` is polled between
    movies (RELION's abort file, a stop file); ``on_start(n_already_done)`` once the folder is
    checked.
    """
    jobs, already = prepare_batch(movies, cfg, out_dir, options=options, command_line=command_line)
    summary = BatchSummary(outcomes=list(already), total=len(movies))
    if on_start is not None:
        on_start(len(already))
    if not jobs:
        return summary

    def collect(outcome: MovieOutcome) -> bool:
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome, summary)
        return outcome.state == "failed" and options.fail_fast

    if options.dask_address:
        from cryozssr.pipeline.engines import run_on_dask

        run_on_dask(jobs, options, collect=collect, should_stop=should_stop)
    elif options.workers > 1:
        from cryozssr.pipeline.engines import run_on_processes

        run_on_processes(jobs, options, collect=collect, should_stop=should_stop)
    else:  # one movie at a time, the next one's file read meanwhile (disk and compute overlap)
        ahead = None
        for i, job in enumerate(jobs):
            if should_stop():
                break
            if i + 1 < len(jobs):
                ahead = prefetch_file(jobs[i + 1].path)
            if collect(run_movie_job(job, on_progress)):
                break
        if ahead is not None:
            ahead.cancel()
    return summary
