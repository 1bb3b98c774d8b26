"""Engines that run :class:`~cryozssr.pipeline.runner.MovieJob` s elsewhere than in this process.

Both submit one movie per task and collect outcomes as they complete; the jobs themselves claim,
process and record their movie (:func:`~cryozssr.pipeline.runner.run_movie_job`), so the engines
only schedule. Results equal a serial run's bytes for the same torch thread count and device.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace

from cryozssr.errors import OptionError
from cryozssr.pipeline.runner import BatchOptions, MovieJob, MovieOutcome, run_movie_job

log = logging.getLogger(__name__)

Collect = Callable[[MovieOutcome], bool]  # True: stop (fail fast)


def _failed(job: MovieJob, exc: BaseException) -> MovieOutcome:
    return MovieOutcome(
        job.stem, "failed", f"{job.path.name}: worker lost ({type(exc).__name__}: {exc})"
    )


def _drain(
    jobs: Sequence[MovieJob],
    submit: Callable[[MovieJob], Future],
    width: int,
    *,
    wait_any: Callable = lambda fs: wait(fs, return_when=FIRST_COMPLETED),
    collect: Collect,
    should_stop: Callable[[], bool],
) -> None:
    """Keep ``width`` jobs in flight; stop submitting on ``should_stop`` or a fail-fast failure."""
    queue = list(jobs)
    running: dict[Future, MovieJob] = {}
    stop = False
    while queue or running:
        while queue and len(running) < width and not stop and not should_stop():
            job = queue.pop(0)
            running[submit(job)] = job
        if not running:
            break
        finished, _ = wait_any(list(running))
        for future in finished:
            job = running.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # a crashed worker: the movie is failed, the others go on
                outcome = _failed(job, exc)
            stop = collect(outcome) or stop


def run_on_processes(
    jobs: Sequence[MovieJob],
    options: BatchOptions,
    *,
    collect: Collect,
    should_stop: Callable[[], bool],
) -> None:
    """``options.workers`` local processes (spawned: no torch state is forked)."""
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
    jobs = [replace(j, threads=threads) for j in jobs]
    log.info("%d worker processes, %d torch thread(s) each", options.workers, threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=options.workers, mp_context=context) as pool:
        _drain(
            jobs,
            lambda job: pool.submit(run_movie_job, job),
            options.workers,
            collect=collect,
            should_stop=should_stop,
        )


def run_on_dask(
    jobs: Sequence[MovieJob],
    options: BatchOptions,
    *,
    collect: Collect,
    should_stop: Callable[[], bool],
) -> None:
    """One task per movie on the Dask scheduler at ``options.dask_address``.

    With ``gpus_per_task``, each task asks for that many ``GPU`` worker resources: start the
    workers with ``--resources GPU=1`` (one GPU per worker, ``CUDA_VISIBLE_DEVICES`` set per
    worker) so that no two movies share a GPU.
    """
    try:
        from distributed import Client
        from distributed import wait as dask_wait
    except ImportError:
        raise OptionError(
            "--dask needs dask.distributed: pip install 'cryozssr[cluster]'"
        ) from None
    try:
        client = Client(options.dask_address, timeout="10s")
    except OSError as exc:
        raise OptionError(
            f"--dask {options.dask_address}: cannot reach the scheduler ({exc})"
        ) from None
    resources = {"GPU": options.gpus_per_task} if options.gpus_per_task else None
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    jobs = [replace(j, threads=options.threads) for j in jobs]
    try:
        _drain(
            jobs,
            lambda job: client.submit(run_movie_job, job, pure=False, resources=resources),
            2 * n_workers,
            wait_any=lambda fs: dask_wait(fs, return_when="FIRST_COMPLETED"),
            collect=collect,
            should_stop=should_stop,
        )
    finally:
        client.close()
