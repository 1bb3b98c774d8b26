"""Writing a simulated data set (the layout is documented in :mod:`cryozssr.simulate`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cryozssr.io import atomic_path, write_mrc, write_star
from cryozssr.motion.field import MotionField
from cryozssr.simulate.config import SimulationConfig
from cryozssr.simulate.movie import SimulatedMovie
from cryozssr.simulate.potential import Potential


def movie_stem(index: int) -> str:
    return f"mic_{index:04d}"


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return path


def motion_to_dict(motion: MotionField, *, pixel_size_hr_angstrom: float) -> dict:
    """The motion as JSON-ready lists; every shift is ``[x, y]`` (position of the specimen in frame
    t relative to frame 0)."""
    g = motion.global_shifts_px.double()
    xy = g.flip(-1)
    out = {
        "convention": "shift[t] = position of the specimen in frame t minus its position in frame 0,"
        " as [x, y]; a pixel's centre is at integer coordinates",
        "pixel_size_hr_angstrom": pixel_size_hr_angstrom,
        "image_shape_hr_yx": list(motion.image_shape),
        "global_hr_px": xy.tolist(),
        "global_lr_px": (xy / 2).tolist(),
        "global_angstrom": (xy * pixel_size_hr_angstrom).tolist(),
        "local": None,
    }
    if motion.local_shifts_px is not None:
        gh, gw = motion.local_shifts_px.shape[1:3]
        out["local"] = {
            "grid_shape_yx": [gh, gw],
            "nodes": "node (i, j) at y = (i + 0.5) * H / gh - 0.5, x = (j + 0.5) * W / gw - 0.5 "
            "(HR px); bilinear between nodes, clamped at the border; added to the global shift",
            "shifts_hr_px": motion.local_shifts_px.double()
            .flip(-1)
            .tolist(),  # (t, gh, gw, [x, y])
        }
    return out


def read_motion(path: str | Path) -> MotionField:
    """Read a ``truth/<stem>_motion.json`` back into a :class:`MotionField` (HR pixels)."""
    d = json.loads(Path(path).read_text())
    g = torch.tensor(d["global_hr_px"], dtype=torch.float32).flip(-1)
    loc = None
    if d.get("local"):
        loc = torch.tensor(d["local"]["shifts_hr_px"], dtype=torch.float32).flip(-1)
    return MotionField(g, tuple(d["image_shape_hr_yx"]), loc)


def motion_summary(motion: MotionField, *, pixel_size_hr_angstrom: float) -> dict:
    g = motion.global_shifts_px.double() * pixel_size_hr_angstrom
    steps = torch.linalg.norm(torch.diff(g, dim=0), dim=-1)
    out = {
        "drift_end_to_end_angstrom": float(torch.linalg.norm(g[-1])),
        "drift_path_length_angstrom": float(steps.sum()),
        "drift_in_first_quarter_fraction": float(
            steps[: max(1, len(steps) // 4)].sum() / max(float(steps.sum()), 1e-12)
        ),
    }
    if motion.local_shifts_px is not None:
        last = motion.local_shifts_px[-1].double() * pixel_size_hr_angstrom
        out["local_rms_last_frame_angstrom"] = float(torch.sqrt((last**2).sum(-1).mean()))
        out["local_max_last_frame_angstrom"] = float(torch.linalg.norm(last, dim=-1).max())
    return out


def write_movie(out_dir: str | Path, stem: str, movie: SimulatedMovie, config: SimulationConfig):
    """Write one movie's LR and HR counts (uint16 MRC), its truths and its motion."""
    out = Path(out_dir)
    px = config.pixel_size_hr_angstrom
    # counts as uint16 (MRC mode 6) unless an extreme dose overflows it
    mode = "uint16" if int(movie.lr_counts.max()) <= 65535 else "float32"
    write_mrc(
        out / "movies_lr" / f"{stem}.mrc", movie.lr_counts, pixel_size_angstrom=2 * px, mode=mode
    )
    write_mrc(out / "movies_hr" / f"{stem}.mrc", movie.hr_counts, pixel_size_angstrom=px, mode=mode)
    write_mrc(out / "truth" / f"{stem}_ctf.mrc", movie.truth_ctf, pixel_size_angstrom=px)
    write_mrc(out / "truth" / f"{stem}_noctf.mrc", movie.truth_noctf, pixel_size_angstrom=px)
    write_json(
        out / "truth" / f"{stem}_motion.json",
        motion_to_dict(movie.motion, pixel_size_hr_angstrom=px) | {"stem": stem},
    )


def particle_rows(stem: str, movie: SimulatedMovie) -> pd.DataFrame:
    """RELION particle rows of one movie: HR-pixel coordinates, Euler angles, the movie's CTF."""
    n = len(movie.particles_yx_px)
    yx = np.asarray(movie.particles_yx_px, dtype=np.float64).reshape(n, 2)
    e = np.asarray(movie.particles_euler_deg, dtype=np.float64).reshape(n, 3)
    return pd.DataFrame(
        {
            "rlnMicrographName": [f"movies_lr/{stem}.mrc"] * n,
            "rlnCoordinateX": yx[:, 1],
            "rlnCoordinateY": yx[:, 0],
            "rlnAngleRot": e[:, 0],
            "rlnAngleTilt": e[:, 1],
            "rlnAnglePsi": e[:, 2],
            "rlnDefocusU": [movie.ctf.defocus_u_angstrom] * n,
            "rlnDefocusV": [movie.ctf.defocus_v_angstrom] * n,
            "rlnDefocusAngle": [movie.ctf.defocus_angle_deg] * n,
            "rlnOpticsGroup": [1] * n,
        }
    )


def write_particles_star(
    path: str | Path, rows: list[pd.DataFrame], config: SimulationConfig, box_size_hr: int
) -> Path:
    """RELION 3.1 particles STAR: ``data_optics`` + ``data_particles``. Coordinates are in HR
    pixels (``rlnMicrographPixelSize`` = HR pixel) although the micrographs named are the LR movies
    (``rlnMicrographOriginalPixelSize`` = LR pixel)."""
    px = config.pixel_size_hr_angstrom
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnMicrographOriginalPixelSize": [2 * px],
            "rlnMicrographPixelSize": [px],
            "rlnImagePixelSize": [px],
            "rlnImageSize": [box_size_hr],
            "rlnImageDimensionality": [2],
            "rlnVoltage": [config.voltage_kv],
            "rlnSphericalAberration": [config.spherical_aberration_mm],
            "rlnAmplitudeContrast": [config.amplitude_contrast],
        }
    )
    particles = pd.concat(rows, ignore_index=True)
    return write_star(path, {"optics": optics, "particles": particles})


def write_map(path: str | Path, potential: Potential) -> Path:
    """The ground-truth potential (V) at the HR pixel, as an MRC volume."""
    return write_mrc(
        path, potential.hr_map(), pixel_size_angstrom=potential.pixel_size_hr_angstrom, volume=True
    )
