"""``cryozssr run``: super-resolve movies 2x.

Example::

    cryozssr run movies/*.tif --out sr/ --pixel-size 1.5 --dose-per-frame 1.2 --gain gain.mrc

For each movie ``<stem>`` it writes ``<stem>_sr.mrc`` (2x, half the pixel size), ``<stem>_avg.mrc``
(motion-corrected, dose-weighted average), ``<stem>.json`` (config, trajectory, timings) and, for the
whole folder, ``micrographs_sr.star`` for RELION / cryoSPARC import.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import command_line, err_console, error_line, progress
from cryozssr.errors import CryoZssrError

_IN = "Input"
_OPT = "Optics and exposure"
_METHOD = "Method"
_BATCH = "Batch"


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
    patches: int | None = typer.Option(
        None,
        "--patches",
        help="Local motion on an NxN patch grid (default: the motion config's).",
        rich_help_panel=_METHOD,
    ),
    half_sets: bool = typer.Option(
        False,
        "--half-sets",
        help="Also super-resolve even and odd frames apart (for half-set FRC).",
        rich_help_panel=_METHOD,
    ),
    device: str = typer.Option(
        "auto", "--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=_METHOD
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Random seed (same seed, same output on the CPU).",
        rich_help_panel=_METHOD,
    ),
    skip_existing: bool = typer.Option(
        False,
        "--skip-existing",
        help="Skip movies whose <stem>.json already exists.",
        rich_help_panel=_BATCH,
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="I/N: process every N-th movie from the I-th (cluster job arrays).",
        rich_help_panel=_BATCH,
    ),
    keep_going: bool = typer.Option(
        False,
        "--keep-going",
        help="Report a bad movie and go on with the others.",
        rich_help_panel=_BATCH,
    ),
) -> None:
    """Super-resolve cryo-EM movies 2x (the multi-frame MMSE estimate by default, Cryo-ZSSR's
    networks, or a baseline).

    Example: cryozssr run movies/*.tif --out sr/ --pixel-size 1.5 --dose-per-frame 1.2

    Rerun a recorded run: cryozssr run movies/a.tif --out again/ --config sr/a.json
    """
    params = {k: v for k, v in locals().items() if k != "ctx"}
    from cryozssr.cli._run_config import build_run_config
    from cryozssr.device import resolve_device
    from cryozssr.io import expand_movie_inputs, movie_stem, read_gain
    from cryozssr.pipeline import process_movie
    from cryozssr.pipeline.batch import (
        parse_shard,
        preflight,
        prepare_out_dir,
        write_star_from_records,
    )
    from cryozssr.pipeline.batch import shard as take_shard
    from cryozssr.pipeline.movie import output_paths

    cfg = build_run_config(ctx, **params)
    gain = Path(cfg.gain_path) if cfg.gain_path else None
    i, n = parse_shard(shard)
    movies = take_shard(expand_movie_inputs(inputs), i, n)
    n_total = len(movies)
    gain_img = read_gain(gain, rot=cfg.gain_rot, flip=cfg.gain_flip) if gain else None
    prepare_out_dir(out)
    failed: list[str] = []
    movies = preflight(movies, cfg, gain_img, keep_going=keep_going, failed=failed)
    dev = resolve_device(cfg.device)
    protect = [*movies, *([gain] if gain else [])]
    with progress() as bar:
        overall = bar.add_task(f"{cfg.method}: movies", total=len(movies))
        stage = bar.add_task("", total=None, visible=False)

        def on_progress(description: str, done: int, total: int) -> None:
            bar.update(
                stage, description=f"  {description}", completed=done, total=total, visible=True
            )

        for path in movies:
            if skip_existing and output_paths(out, movie_stem(path))[2].exists():
                bar.advance(overall)
                continue
            try:
                result = process_movie(
                    path,
                    cfg,
                    out,
                    device=dev,
                    gain=gain_img,
                    protect=protect,
                    command_line=command_line(),
                    on_progress=on_progress,
                )
            except CryoZssrError as exc:
                if not keep_going:
                    raise
                err_console.print(error_line(exc), markup=False, highlight=False)
                failed.append(path.name)
            else:
                bar.console.print(
                    f"{result.stem}: {result.sr_path} ({result.seconds:.1f} s)", markup=False
                )
            bar.update(stage, visible=False)
            bar.advance(overall)
    write_star_from_records(out)
    if failed:
        raise CryoZssrError(f"{len(failed)} of {n_total} movies failed: {', '.join(failed)}")
