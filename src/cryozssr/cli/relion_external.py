"""``cryozssr relion-external``: run as a RELION 5 External job (Motion correction's place).

In RELION's External job tab: executable ``cryozssr relion-external``, input movies
``Import/job001/movies.star``, parameters such as ``method = zssr``, ``dose_per_frame = 1.2``,
``gain = Movies/gain.mrc``. RELION then runs, from the project folder::

    cryozssr relion-external --o External/job012/ --in_movies Import/job001/movies.star \\
        --dose_per_frame 1.2 --j 4

Pixel size, voltage, Cs and amplitude contrast come from the movies STAR's optics table unless
given. Writes only inside ``--o``: the outputs of ``cryozssr run``, ``micrographs_sr.star`` with
project-relative paths, ``RELION_OUTPUT_NODES.star`` and one ``RELION_JOB_EXIT_*`` marker;
``RELION_JOB_ABORT_NOW`` stops it between movies; "Continue" resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import command_line
from cryozssr.errors import OptionError


def relion_external(
    ctx: typer.Context,
    o: Path = typer.Option(..., "--o", help="The job folder RELION gives (External/jobNNN/)."),
    in_movies: Path = typer.Option(..., "--in_movies", help="RELION movies STAR file."),
    j: int = typer.Option(1, "--j", help="Threads (RELION's --j): torch threads per worker."),
    method: str = typer.Option("mmse", "--method", help="As cryozssr run --method."),
    regime: str | None = typer.Option(None, "--regime", help="zssr regime: journal or workshop."),
    pixel_size: float | None = typer.Option(None, "--pixel_size", help="Movie pixel, A."),
    dose_per_frame: float | None = typer.Option(None, "--dose_per_frame", help="e/A^2 per frame."),
    gain: str | None = typer.Option(None, "--gain", help="Gain reference (project-relative)."),
    gain_rot: int = typer.Option(0, "--gain_rot", help="RELION's gain rotation 0..3."),
    gain_flip: int = typer.Option(0, "--gain_flip", help="RELION's gain flip 0..2."),
    eer_fractions: int = typer.Option(40, "--eer_fractions", help="EER frames to group into."),
    patches: str = typer.Option(
        "auto", "--patches", help="Local motion: auto, off or N (NxN), as cryozssr run --patches."
    ),
    mtf: str | None = typer.Option(None, "--mtf", help="Detector MTF STAR (rlnMtfFileName)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    workers: int = typer.Option(1, "--workers", help="Local worker processes."),
    dask: str | None = typer.Option(None, "--dask", help="Dask scheduler address."),
) -> None:
    """Run cryozssr as a RELION 5 External job (see the README's RELION recipe).

    Example: cryozssr relion-external --o External/job012/ --in_movies Import/job001/movies.star --j 4
    """
    from cryozssr.cli._batch import finish
    from cryozssr.cli._run_config import parse_patches
    from cryozssr.io import expand_movie_inputs
    from cryozssr.pipeline import RunConfig
    from cryozssr.pipeline.relion import optics_from_movies_star, run_external_job
    from cryozssr.pipeline.runner import BatchOptions
    from cryozssr.zssr import config_from_preset

    def build_config() -> RunConfig:
        if ctx.args:
            raise OptionError(f"unknown parameter(s) {' '.join(ctx.args)} (see --help)")
        optics = optics_from_movies_star(in_movies) if in_movies.is_file() else {}
        if pixel_size is not None:
            optics["pixel_size_angstrom"] = pixel_size
        if regime is not None and method != "zssr":
            raise OptionError("--regime applies to --method zssr only")
        if regime == "explicit":
            raise OptionError("--regime explicit is now its own method: use --method mmse")
        zssr = config_from_preset("fast", **({"regime": regime} if regime else {}))
        return RunConfig(
            method=method,
            method_config=zssr if method == "zssr" else None,
            device=device,
            seed=seed,
            dose_per_frame_e_per_a2=dose_per_frame,
            gain_path=gain,
            gain_rot=gain_rot,
            gain_flip=gain_flip,
            mtf_path=mtf,
            eer_fractions=eer_fractions,
            motion_patches=parse_patches(patches),
            **optics,
        )

    import torch

    torch.set_num_threads(max(1, j))
    options = BatchOptions(workers=workers, dask_address=dask, threads=max(1, j))
    summary = run_external_job(
        lambda: expand_movie_inputs([str(in_movies)]),
        build_config,
        o,
        options=options,
        command_line=command_line(),
    )
    finish(summary)  # a partial failure still leaves RELION_JOB_EXIT_SUCCESS: see the module
