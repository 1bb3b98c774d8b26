"""``cryozssr run``: super-resolve movies 2x, as a resumable batch.

Example::

    cryozssr run movies/*.tif --out sr/ --pixel-size 1.5 --dose-per-frame 1.2 --gain gain.mrc

For each movie ``<stem>`` it writes ``<stem>_sr.mrc`` (2x, half the pixel size), ``<stem>_avg.mrc``
(motion-corrected, dose-weighted average), ``<stem>_sr.star`` (RELION motion metadata),
``<stem>.json`` (config, trajectory, timings) and, for the whole folder, ``micrographs_sr.star``
(RELION 5 / cryoSPARC import) and ``cryozssr_manifest.jsonl`` (what is done). Rerunning the same
command continues where it stopped. Exit status: 0 all movies done, 3 some failed, 2 usage error,
bad input or all movies failed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import command_line
from cryozssr.errors import OptionError

_IN = "Input"
_OPT = "Optics and exposure"
_METHOD = "Method"
_BATCH = "Batch"
_SCALE = "Scale-out"
_WATCH = "On the fly"


def run(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ..., help="Movies (MRC/MRCS, TIFF, EER), globs, folders, or a RELION movies STAR file."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder.", rich_help_panel=_IN),
    pixel_size: float | None = typer.Option(
        None,
        "--pixel-size",
        help="Movie pixel size in A (default: from the header).",
        rich_help_panel=_OPT,
    ),
    dose_per_frame: float | None = typer.Option(
        None,
        "--dose-per-frame",
        help="Dose per frame in e/A^2 (default: mean counts / pixel area for integer-count movies).",
        rich_help_panel=_OPT,
    ),
    voltage: float = typer.Option(
        300.0, "--voltage", help="Acceleration voltage, kV.", rich_help_panel=_OPT
    ),
    cs: float = typer.Option(
        2.7, "--cs", help="Spherical aberration, mm (for the STAR file).", rich_help_panel=_OPT
    ),
    amp_contrast: float = typer.Option(
        0.07, "--amp-contrast", help="Amplitude contrast.", rich_help_panel=_OPT
    ),
    gain: Path | None = typer.Option(
        None, "--gain", help="Gain reference (MRC or TIFF), multiplied in.", rich_help_panel=_IN
    ),
    gain_rot: int = typer.Option(
        0, "--gain-rot", help="Rotate the gain: 0..3 (RELION's convention).", rich_help_panel=_IN
    ),
    gain_flip: int = typer.Option(
        0, "--gain-flip", help="Flip the gain: 0..2 (RELION's convention).", rich_help_panel=_IN
    ),
    eer_fractions: int = typer.Option(
        40, "--eer-fractions", help="Frames to group an EER movie into.", rich_help_panel=_IN
    ),
    method: str = typer.Option(
        "mmse",
        "--method",
        "-m",
        help="mmse (default: the closed-form MMSE estimate, best on the benchmark), misr,"
        " shift-add, zssr (the papers' networks), bilinear, bicubic or fourier.",
        rich_help_panel=_METHOD,
    ),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="zssr network preset: fast (default) or paper.",
        rich_help_panel=_METHOD,
    ),
    regime: str | None = typer.Option(
        None,
        "--regime",
        help="zssr regime: journal (default) or workshop (the two papers).",
        rich_help_panel=_METHOD,
    ),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", help="Cap zssr training iterations.", rich_help_panel=_METHOD
    ),
    option: list[str] | None = typer.Option(
        None,
        "--option",
        "-O",
        help="NAME=VALUE: set one option of the method's config (repeatable), e.g. -O"
        " regularisation=0.5 (misr, mmse), -O wiener_snr=5 (shift-add), -O tile_size_px=256."
        " The run's JSON lists them all under method_config.",
        rich_help_panel=_METHOD,
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Rerun a recorded run exactly: its record STEM.json (or a bare 'config' object) sets"
        " every option of the run; only the inputs, --out, --device and the batch options may be"
        " given with it.",
        rich_help_panel=_METHOD,
    ),
    zssr_checkpoint: Path | None = typer.Option(
        None,
        "--zssr-checkpoint",
        help="Dataset-level zssr network (journal/workshop): if PATH exists, fine-tune it briefly"
        " on each movie; else train on the first movie and save it to PATH.",
        rich_help_panel=_METHOD,
    ),
    patches: str = typer.Option(
        "auto",
        "--patches",
        help="Local motion: auto (5x5 patches; fewer on frames under 320 px, none if under 128 px"
        " patches; kept only where held-out frames show it: on the simulated benchmark sets it"
        " closes 50-74% of the gap to exact motion, and changes nothing on movies without local"
        " motion), N (an NxN grid, same test) or off (global motion only).",
        rich_help_panel=_METHOD,
    ),
    motion_refine: bool = typer.Option(
        False,
        "--motion-refine/--no-motion-refine",
        help="Refine each frame's (and patch's) shift against the forward model of the"
        " super-resolved estimate, on a central 768 px crop. Off by default: on the benchmark sets"
        " it did not improve on the estimated motion (README, Real detectors).",
        rich_help_panel=_METHOD,
    ),
    half_sets: bool = typer.Option(
        False,
        "--half-sets",
        help="Also super-resolve even and odd frames apart: half-set FRC and the no-truth alias score"
        " (recorded in each JSON; see --score-folds for its cost).",
        rich_help_panel=_METHOD,
    ),
    score_folds: int | None = typer.Option(
        None,
        "--score-folds",
        help="Folds of the alias score (with --half-sets): the method runs once more per fold on"
        " all frames but 1/K of them. Default 4 (fewer under 20 frames). Cost beside the half"
        " sets (one more run of the method): K=2 none (the half sets are the folds), K=4 about 3"
        " more runs of the method; the score itself ~15-60 s per 512 px, 20-frame movie on 2 busy"
        " cores, and on a K3 movie (40 frames, scored on its central 1024 px square, the fold runs"
        " made on it and a 64 px margin) misr's 160 s became 509 s in all (global motion). A"
        " movie whose motion keeps a local field is scored with it: about twice the score's"
        " time at 384 px (the held-out frames' warp)."
        " Needs K >= 2 and 5 frames per fold.",
        rich_help_panel=_METHOD,
    ),
    device: str = typer.Option(
        "auto", "--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=_METHOD
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Random seed (same seed, device and --threads: same bytes).",
        rich_help_panel=_METHOD,
    ),
    mtf: Path | None = typer.Option(
        None,
        "--mtf",
        help="Detector MTF STAR file, named in the STAR optics table (rlnMtfFileName).",
        rich_help_panel=_OPT,
    ),
    redo: bool = typer.Option(
        False,
        "--redo",
        help="Replace results of another configuration in --out (default: refuse the folder).",
        rich_help_panel=_BATCH,
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Re-hash the outputs of done movies (default: check their sizes and times).",
        rich_help_panel=_BATCH,
    ),
    fail_fast: bool = typer.Option(
        False,
        "--fail-fast",
        help="Stop at the first failed movie (default: record it and go on).",
        rich_help_panel=_BATCH,
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="I/N: process every N-th movie from the I-th (cluster job arrays).",
        rich_help_panel=_BATCH,
    ),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", hidden=True, help="Deprecated: resuming is the default."
    ),
    keep_going: bool = typer.Option(
        False, "--keep-going", hidden=True, help="Deprecated: going on is the default."
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="Follow the input folders/globs while a session is recorded (see --stable-seconds).",
        rich_help_panel=_WATCH,
    ),
    stable_seconds: float = typer.Option(
        30.0,
        "--stable-seconds",
        help="With --watch: take a movie once its size and time are unchanged this long.",
        rich_help_panel=_WATCH,
    ),
    idle_seconds: float = typer.Option(
        3600.0,
        "--idle-seconds",
        help="With --watch: stop after this long with no new movie.",
        rich_help_panel=_WATCH,
    ),
    poll_seconds: float = typer.Option(
        5.0,
        "--poll-seconds",
        help="With --watch: list the inputs this often.",
        rich_help_panel=_WATCH,
    ),
    stop_file: Path | None = typer.Option(
        None,
        "--stop-file",
        help="With --watch: stop when this file appears (default: STOP in the output folder).",
        rich_help_panel=_WATCH,
    ),
    workers: int = typer.Option(
        1, "--workers", help="Local worker processes.", rich_help_panel=_SCALE
    ),
    dask: str | None = typer.Option(
        None,
        "--dask",
        help="Address of a running Dask scheduler (tcp://host:8786): one movie per task.",
        rich_help_panel=_SCALE,
    ),
    gpus_per_task: int = typer.Option(
        0,
        "--gpus-per-task",
        help="With --dask: GPU worker resources per movie (start workers with --resources GPU=1).",
        rich_help_panel=_SCALE,
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="torch threads per worker (same seed, device and threads give the same bytes).",
        rich_help_panel=_SCALE,
    ),
) -> None:
    """Super-resolve cryo-EM movies 2x (the multi-frame MMSE estimate by default, Cryo-ZSSR's
    networks, or a baseline).

    Example: cryozssr run movies/*.tif --out sr/ --pixel-size 1.5 --dose-per-frame 1.2

    Rerun a recorded run: cryozssr run movies/a.tif --out again/ --config sr/a.json
    """
    params = {k: v for k, v in locals().items() if k != "ctx"}
    from cryozssr.cli._batch import check_zssr_checkpoint, finish, stderr_line, watch_session
    from cryozssr.cli._batch_progress import BatchProgress, log_file
    from cryozssr.cli._run_config import build_run_config
    from cryozssr.io import expand_movie_inputs
    from cryozssr.pipeline.batch import parse_shard, prepare_out_dir
    from cryozssr.pipeline.batch import shard as take_shard
    from cryozssr.pipeline.runner import BatchOptions, run_batch

    del skip_existing, keep_going  # resuming and going on are what a batch does now
    cfg = build_run_config(ctx, **params)
    check_zssr_checkpoint(cfg)
    options = BatchOptions(
        redo=redo,
        verify=verify,
        fail_fast=fail_fast,
        workers=workers,
        dask_address=dask,
        gpus_per_task=gpus_per_task,
        threads=threads,
    )
    if device != "auto":  # a missing GPU is a usage error before anything is written
        from cryozssr.device import resolve_device

        resolve_device(device)
    if threads:
        import torch

        torch.set_num_threads(threads)
    cmd = command_line()
    if watch:
        from cryozssr.pipeline.watch import WatchConfig

        if shard:
            raise OptionError("--shard and --watch exclude each other (use --workers or --dask)")
        watch_cfg = WatchConfig(
            stable_seconds=stable_seconds,
            poll_seconds=poll_seconds,
            idle_seconds=idle_seconds,
            stop_file=stop_file,
        )
        watch_session(inputs, cfg, out, watch_cfg, options, cmd)
        return
    i, n = parse_shard(shard)
    movies = take_shard(expand_movie_inputs(inputs), i, n)
    prepare_out_dir(out)
    with log_file(out, cmd), BatchProgress(len(movies), 0, label=f"{cfg.method}: movies") as bar:

        def on_outcome(outcome, summary) -> None:
            bar.outcome(outcome.stem, outcome.state, outcome.reason, outcome.seconds)
            if outcome.state == "failed" and len(movies) > 1:
                stderr_line(f"cryozssr: failed: {outcome.reason}")

        summary = run_batch(
            movies,
            cfg,
            out,
            options=options,
            command_line=cmd,
            on_outcome=on_outcome,
            on_progress=bar.stage,
            on_start=bar.set_already,
        )
        finish(summary)
