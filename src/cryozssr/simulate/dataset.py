"""Write a whole simulated data set (the layout documented in :mod:`cryozssr.simulate`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cryozssr import __version__
from cryozssr.simulate.config import SimulationConfig
from cryozssr.simulate.counting import counting_record
from cryozssr.simulate.detector import mtf_table_name
from cryozssr.simulate.movie import potential_for, simulate_movie
from cryozssr.simulate.output import (
    motion_summary,
    movie_stem,
    particle_rows,
    write_json,
    write_map,
    write_movie,
    write_particles_star,
)

log = logging.getLogger(__name__)


def _plain(items: Iterable[int]) -> Iterator[int]:
    yield from items


def simulate_dataset(
    out: Path,
    config: SimulationConfig,
    *,
    seed: int,
    command: str = "",
    iterate: Callable[[Iterable[int]], Iterable[int]] = _plain,
) -> Path:
    """Simulate ``config.n_movies`` movies into ``out``; return the path of ``simulation.json``.

    ``iterate`` wraps the loop over movie indices (the CLI passes a progress bar).
    """
    config = config.validate()
    log.info(
        "building the potential of %s (%s)", config.model or "apoferritin 7A4M", config.symmetry
    )
    potential = potential_for(config)
    write_map(out / "map.mrc", potential)
    rows, movies = [], []
    for i in iterate(range(config.n_movies)):
        stem = movie_stem(i)
        movie = simulate_movie(config, seed=(seed, i), potential=potential)
        write_movie(out, stem, movie, config)
        rows.append(particle_rows(stem, movie))
        movies.append(
            {
                "stem": stem,
                "seed": [seed, i],
                "particles": len(movie.particles_yx_px),
                "ctf": {
                    "defocus_u_angstrom": movie.ctf.defocus_u_angstrom,
                    "defocus_v_angstrom": movie.ctf.defocus_v_angstrom,
                    "defocus_angle_deg": movie.ctf.defocus_angle_deg,
                },
                "motion": motion_summary(
                    movie.motion, pixel_size_hr_angstrom=config.pixel_size_hr_angstrom
                ),
                "mean_counts_per_hr_pixel_per_frame": float(movie.hr_counts.float().mean()),
            }
        )
    write_particles_star(
        out / "particles.star", rows, config, potential.box_size // potential.oversample
    )
    return write_json(
        out / "simulation.json",
        {
            "cryozssr_version": __version__,
            "command": command,
            "seed": seed,
            "config": config.to_dict(),
            "counts_per_hr_pixel_per_frame": config.counts_per_hr_pixel_per_frame,
            "detector_mtf_table": mtf_table_name(config.detector, config.voltage_kv),
            "detector_counting": counting_record(config),
            "potential": {
                "model": config.model or "cryozssr/data/apoferritin/7A4M_chainA_box.pdb",
                "symmetry": potential.symmetry,
                "atoms": potential.n_atoms,
                "radius_angstrom": potential.radius_angstrom,
                "box_hr_px": potential.box_size // potential.oversample,
                "grid_angstrom": potential.voxel_size_angstrom,
            },
            "movies": movies,
        },
    )
