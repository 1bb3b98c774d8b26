"""``cryozssr simulate``: realistic simulated movies with full ground truth."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from cryozssr.cli._common import command_line, console, track
from cryozssr.errors import OptionError

log = logging.getLogger(__name__)


def simulate(
    out: Path = typer.Option(..., "--out", help="Output folder (created if needed)."),
    n_movies: int = typer.Option(1, "--n-movies", help="Number of movies."),
    size_hr: int = typer.Option(1024, "--size-hr", help="HR frame size in pixels (square, even)."),
    pixel_size_hr: float = typer.Option(
        1.5, "--pixel-size-hr", help="HR pixel size in Å (the LR movie has 2x larger pixels)."
    ),
    frames: int = typer.Option(40, "--frames", help="Frames per movie."),
    dose_per_frame: float = typer.Option(
        1.5, "--dose-per-frame", help="Exposure per frame in e/Å² (detected)."
    ),
    defocus_range: tuple[float, float] = typer.Option(
        (0.8, 2.5), "--defocus-range", help="Defocus range MIN MAX in µm (underfocus positive)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="PDB/mmCIF model (default: the shipped apoferritin chain)."
    ),
    symmetry: str = typer.Option(
        "O", "--symmetry", help="Point group: C1, Cn or Dn (e.g. C4, D7), T or O."
    ),
    particles: int = typer.Option(100, "--particles", help="Particles per movie."),
    detector: str = typer.Option(
        "k3",
        "--detector",
        help="Detector: k3, k2, falcon4ec, falcon3ec (measured MTF and counting statistics) or ideal.",
    ),
    noise_model: str = typer.Option(
        "counting",
        "--noise-model",
        help="counting: the detector's efficiency, coincidence loss and pixel-correlated multiple "
        "counting; poisson: an ideal counter (independent Poisson counts, white noise).",
    ),
    dose_rate: float | None = typer.Option(
        None,
        "--dose-rate",
        help="Dose rate on the detector, e/px/s (sets the coincidence loss); default: the "
        "detector's typical rate.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same files."),
    no_ice: bool = typer.Option(False, "--no-ice", help="No vitreous-ice background."),
) -> None:
    """Simulate cryo-EM movies with full ground truth (HR and 2x2-binned LR counts).

    Every frame: a real atomic model's potential (default: human apoferritin, octahedral 24-mer)
    at random orientations and positions in vitreous ice, beam-induced motion, radiation damage,
    CTF, the detector's MTF and counting statistics (efficiency, coincidence loss, pixel-correlated
    multiple counting; --noise-model poisson for an ideal counter) at the set dose. Writes the LR
    and HR movies, noiseless HR micrographs (with and without CTF), the motion, a RELION particles
    STAR file, the 3D map and simulation.json (every parameter and the seed).

    Example: cryozssr simulate --out sim --n-movies 4 --size-hr 1024 --seed 1
    """
    from cryozssr.simulate import SimulationConfig
    from cryozssr.simulate.dataset import simulate_dataset

    if seed < 0:
        raise OptionError(f"--seed must be >= 0, got {seed}")
    config = SimulationConfig(
        n_movies=n_movies,
        size_hr=size_hr,
        pixel_size_hr_angstrom=pixel_size_hr,
        frames=frames,
        dose_per_frame_e_per_a2=dose_per_frame,
        defocus_range_um=(float(defocus_range[0]), float(defocus_range[1])),
        model=None if model is None else str(model),
        symmetry=symmetry,
        particles=particles,
        detector=detector.lower(),
        noise_model=noise_model.lower(),
        dose_rate_e_per_px_per_s=dose_rate,
        ice=not no_ice,
    ).validate()
    started = time.time()
    simulate_dataset(
        out,
        config,
        seed=seed,
        command=command_line(),
        iterate=lambda items: track(items, "simulating movies", total=config.n_movies),
    )
    log.info("simulated %d movie(s) in %.1f s", config.n_movies, time.time() - started)
    console.print(f"wrote {config.n_movies} simulated movie(s) to {out}")
