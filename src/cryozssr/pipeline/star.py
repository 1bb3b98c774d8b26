"""RELION 5 STAR files: the micrographs table of a folder and one motion file per movie.

Conventions follow RELION's own motion correction (``src/motioncorr_runner.cpp``,
``src/micrograph_model.cpp``), so that RELION jobs (CTF estimation, picking, Bayesian polishing)
continue from our output with no manual step:

* ``micrographs_sr.star`` is a ``corrected_micrographs.star``: ``data_optics`` with
  ``rlnMicrographOriginalPixelSize`` (the movie's pixel) and ``rlnMicrographPixelSize`` (half of
  it: the 2x micrograph), ``data_micrographs`` with ``rlnMicrographName``,
  ``rlnMicrographMetadata`` and ``rlnAccumMotionTotal/Early/Late``. As in RELION these sums of
  frame-to-frame global displacement are in movie pixels (RELION's label text says A, its code
  sums pixels), early being frames up to an accumulated dose of 4 e/A^2 (frame 4 when the dose is
  unknown).
* ``<stem>.star`` (the metadata file): ``data_general`` (movie size, name, binning
  ``0.5`` because the micrograph has twice the movie's pixels, original pixel size, dose per
  frame, pre-exposure, voltage, start frame 1, motion model version), ``data_global_shift``
  (1-based frame numbers, shifts in movie pixels, RELION's sign: the shift that *aligns* the frame,
  the opposite of :class:`~cryozssr.motion.field.MotionField`'s specimen position) and, where
  local motion ran, ``data_local_motion_model``: RELION's third-order polynomial (model version 1)
  fitted by least squares to our patch shifts, with ``x = px / width - 0.5``, same for ``y``,
  ``z`` = frame index from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cryozssr.dose import Exposure
from cryozssr.io import write_star
from cryozssr.motion.field import MotionField
from cryozssr.pipeline.manifest import STAR_NAME

EARLY_DOSE_E_PER_A2 = 4.0  # RELION's --dose_motionstats_cutoff default
MOTION_MODEL_NULL, MOTION_MODEL_THIRD_ORDER_POLYNOMIAL = 0, 1
#: The micrograph has twice the movie's pixels: RELION's binning factor (movie px per micrograph px).
BINNING = 0.5


def accumulated_motion(motion: MotionField, exposure: Exposure) -> tuple[float, float, float]:
    """``(total, early, late)`` sum of frame-to-frame global displacement, movie pixels (RELION)."""
    shifts = motion.global_shifts_px.double().cpu()
    steps = (shifts[1:] - shifts[:-1]).norm(dim=-1)  # step into frame f (1-based) = 2..t
    dose = exposure.dose_per_frame_e_per_a2
    cutoff = (EARLY_DOSE_E_PER_A2 - exposure.pre_exposure_e_per_a2) / dose if dose else 4.0
    frames = torch.arange(2, shifts.shape[0] + 1, dtype=torch.float64)
    early = float(steps[frames <= cutoff].sum())
    late = float(steps[frames > cutoff].sum())
    return early + late, early, late


def _polynomial_terms(z: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """RELION's ThirdOrderPolynomialModel terms ``(n, 18)``: (1, x, x^2, y, y^2, xy) x (z, z^2, z^3)."""
    zs = torch.stack([z, z**2, z**3], dim=-1)
    space = torch.stack([torch.ones_like(x), x, x**2, y, y**2, x * y], dim=-1)
    return (space[:, :, None] * zs[:, None, :]).reshape(-1, 18)


def fit_local_model(motion: MotionField) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Least-squares fit of RELION's polynomial to the local shifts: ``(coeff_x, coeff_y)`` or None.

    Values are RELION's (aligning) shifts in movie pixels; None when there is no local motion or
    too few observations (RELION's own rule: more than 18).
    """
    local = motion.local_shifts_px
    if local is None:
        return None
    t, gh, gw, _ = local.shape
    if t * gh * gw <= 18:
        return None
    h, w = motion.image_shape
    zz, ii, jj = torch.meshgrid(
        torch.arange(t, dtype=torch.float64),
        torch.arange(gh, dtype=torch.float64),
        torch.arange(gw, dtype=torch.float64),
        indexing="ij",
    )
    # node centres as in motion.field (pixel centres at integers), normalised as RELION does
    y = ((ii + 0.5) * h / gh - 0.5).flatten() / h - 0.5
    x = ((jj + 0.5) * w / gw - 0.5).flatten() / w - 0.5
    a = _polynomial_terms(zz.flatten(), x, y)
    rhs = -local.double().cpu().reshape(-1, 2)  # (y, x) specimen -> aligning shift
    coeffs = torch.linalg.lstsq(a, rhs[:, [1, 0]]).solution  # (18, 2): x then y
    return coeffs[:, 0], coeffs[:, 1]


def motion_star_blocks(
    motion: MotionField, exposure: Exposure, *, movie_name: str, gain_name: str | None = None
) -> dict[str, Any]:
    """The per-movie metadata STAR blocks (``general``, ``global_shift``, ``local_motion_model``)."""
    h, w = motion.image_shape
    model = fit_local_model(motion)
    general: dict[str, Any] = {
        "rlnImageSizeX": int(w),
        "rlnImageSizeY": int(h),
        "rlnImageSizeZ": motion.n_frames,
        "rlnMicrographMovieName": movie_name,
        **({"rlnMicrographGainName": gain_name} if gain_name else {}),
        "rlnMicrographBinning": BINNING,
        "rlnMicrographOriginalPixelSize": float(exposure.pixel_size_angstrom),
        **(
            {"rlnMicrographDoseRate": float(exposure.dose_per_frame_e_per_a2)}
            if exposure.dose_per_frame_e_per_a2
            else {}
        ),
        "rlnMicrographPreExposure": float(exposure.pre_exposure_e_per_a2),
        "rlnVoltage": float(exposure.voltage_kv),
        "rlnMicrographStartFrame": 1,
        "rlnMotionModelVersion": (
            MOTION_MODEL_NULL if model is None else MOTION_MODEL_THIRD_ORDER_POLYNOMIAL
        ),
    }
    aligning = 0.0 - motion.global_shifts_px.double().cpu()  # 0.0 -: no -0.0 in the file
    blocks: dict[str, Any] = {
        "general": general,
        "global_shift": pd.DataFrame(
            {
                "rlnMicrographFrameNumber": range(1, motion.n_frames + 1),
                "rlnMicrographShiftX": aligning[:, 1].tolist(),
                "rlnMicrographShiftY": aligning[:, 0].tolist(),
            }
        ),
    }
    if model is not None:
        blocks["local_motion_model"] = pd.DataFrame(
            {
                "rlnMotionModelCoeffsIdx": range(36),
                "rlnMotionModelCoeff": torch.cat(model).tolist(),
            }
        )
    return blocks


def micrograph_row(
    motion: MotionField, exposure: Exposure, *, sr_name: str, metadata_name: str
) -> dict[str, Any]:
    """One movie's ``data_micrographs`` row and optics values (kept in the batch manifest)."""
    total, early, late = accumulated_motion(motion, exposure)
    return {
        "rlnMicrographName": sr_name,
        "rlnMicrographMetadata": metadata_name,
        "rlnAccumMotionTotal": total,
        "rlnAccumMotionEarly": early,
        "rlnAccumMotionLate": late,
        "optics": {
            "rlnMicrographOriginalPixelSize": float(exposure.pixel_size_angstrom),
            "rlnMicrographPixelSize": float(exposure.pixel_size_angstrom) / 2,
            "rlnVoltage": float(exposure.voltage_kv),
            "rlnSphericalAberration": float(exposure.spherical_aberration_mm),
            "rlnAmplitudeContrast": float(exposure.amplitude_contrast),
        },
    }


def micrographs_blocks(
    rows: Sequence[dict[str, Any]], *, mtf_name: str | None = None
) -> dict[str, pd.DataFrame]:
    """``{"optics", "micrographs"}``: one optics group per distinct set of optics values."""
    groups: dict[tuple, int] = {}
    table = []
    for row in rows:
        optics = row["optics"]
        key = tuple(sorted(optics.items()))
        group = groups.setdefault(key, len(groups) + 1)
        table.append({k: v for k, v in row.items() if k != "optics"} | {"rlnOpticsGroup": group})
    optics_rows = [
        {"rlnOpticsGroupName": f"opticsGroup{g}", "rlnOpticsGroup": g, **dict(key)}
        | ({"rlnMtfFileName": mtf_name} if mtf_name else {})
        for key, g in groups.items()
    ]
    columns = [
        "rlnMicrographName",
        "rlnMicrographMetadata",
        "rlnOpticsGroup",
        "rlnAccumMotionTotal",
        "rlnAccumMotionEarly",
        "rlnAccumMotionLate",
    ]
    return {"optics": pd.DataFrame(optics_rows), "micrographs": pd.DataFrame(table)[columns]}


def write_star_files(out_dir: Path, manifest: dict[str, Any]) -> Path | None:
    """(Re)write ``micrographs_sr.star`` from the manifest's done movies (sorted by name).

    Names are relative to the STAR file's folder, or start with the manifest's ``star_prefix``
    (a RELION job folder: RELION reads paths relative to the project folder).

    Called under the folder lock after every movie, so the file always lists exactly what is done.
    """
    done = [
        e
        for _, e in sorted(manifest["movies"].items())
        if e.get("state") == "done" and e.get("micrograph")
    ]
    if not done:
        return None
    mtf = (manifest.get("config") or {}).get("mtf_path")
    prefix = manifest.get("star_prefix", "")  # e.g. "External/job012/": RELION's project paths
    rows = [
        e["micrograph"]
        | {k: prefix + e["micrograph"][k] for k in ("rlnMicrographName", "rlnMicrographMetadata")}
        for e in done
    ]
    return write_star(out_dir / STAR_NAME, micrographs_blocks(rows, mtf_name=mtf))
