"""Oracle-pose 3D evaluation: particles cut at the true positions, reconstructed, FSC'd.

A :class:`ParticleSet` gathers boxes from micrographs of one row (``add_micrograph``, given the
micrograph's rows of ``particles.star``); :func:`evaluate_3d` reconstructs two half maps (even and
odd particles), imposes the symmetry, and measures the half-map FSC (0.143) and the FSC of the full
map against the ground-truth map (0.5), both inside a soft spherical mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from cryozssr.evaluate.ctf_fit import Microscope
from cryozssr.evaluate.fsc import fourier_crop_3d, fsc_curve, resolution_at
from cryozssr.evaluate.reconstruct import (
    extract_boxes,
    insert_particles,
    soft_sphere,
    symmetrise,
    symmetry_matrices,
    wiener_map,
)
from cryozssr.geometry import relion_euler_to_matrix


@dataclass
class ParticleSet:
    """Boxes ``(n, b, b)`` (inverted contrast ``1 - I / mean(I)``), RELION angles, defoci of a row."""

    box_px: int
    pixel_size_angstrom: float
    boxes: list[torch.Tensor] = field(default_factory=list)
    angles_deg: list[torch.Tensor] = field(default_factory=list)
    defocus: list[torch.Tensor] = field(default_factory=list)  # (n, 3): U, V, angle
    microscope: Microscope = field(default_factory=Microscope)

    def add_micrograph(
        self,
        image: torch.Tensor,
        particles: pd.DataFrame,
        microscope: Microscope,
        *,
        lr: bool,
        shift_px: tuple[float, float] = (0.0, 0.0),
        periodic: bool = False,
    ) -> None:
        """Cut this micrograph's particles; coordinates are HR px, mapped to LR by ``(c - 0.5) / 2``.

        ``shift_px`` is the micrograph's registration to the truth (``truth ~ shift(image, s)``): a
        particle at ``c`` in the truth sits at ``c - s`` in the image. ``periodic``: boxes wrap
        around the edges (as the field of view of ``cryozssr simulate`` does) instead of being skipped.
        """
        if len(particles) == 0:
            return
        self.microscope = microscope
        yx = torch.tensor(particles[["rlnCoordinateY", "rlnCoordinateX"]].to_numpy(dtype="float64"))
        if lr:
            yx = (yx - 0.5) / 2
        yx = yx - torch.tensor(shift_px, dtype=torch.float64)
        # protein is dark (image = dose (1 - 2 V * CTF)): invert so the density comes out positive
        contrast = 1.0 - image.double() / image.double().mean().clamp(min=1e-12)
        boxes, kept = extract_boxes(contrast, yx, box_px=self.box_px, periodic=periodic)
        cols = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
        self.boxes.append(boxes.float())
        self.angles_deg.append(torch.tensor(particles[cols].to_numpy(dtype="float64"))[kept])
        dcols = ["rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"]
        self.defocus.append(torch.tensor(particles[dcols].to_numpy(dtype="float64"))[kept])

    def __len__(self) -> int:
        return sum(int(b.shape[0]) for b in self.boxes)


@dataclass
class Result3D:
    figures: dict[str, Any]
    curves: dict[str, dict[str, list[float]]]
    half_maps: tuple[torch.Tensor, torch.Tensor]


def evaluate_3d(
    particles: ParticleSet,
    truth_map: torch.Tensor,
    *,
    symmetry: str = "C1",
    wiener_constant: float = 0.01,
    mask_radius_fraction: float = 0.45,
) -> Result3D:
    """Half maps, half-map FSC at 0.143, full-map FSC against ``truth_map`` at 0.5 (Angstrom).

    ``truth_map`` ``(B, B, B)`` is at the HR pixel; it is Fourier-cropped to the row's box.
    """
    n = len(particles)
    if n < 2:
        raise ValueError(f"only {n} particle(s) inside the micrographs: no reconstruction")
    b = particles.box_px
    boxes = torch.cat(particles.boxes)
    rot = relion_euler_to_matrix(torch.cat(particles.angles_deg))
    d = torch.cat(particles.defocus)
    m = particles.microscope
    ctf = {
        "defocus_u_angstrom": d[:, 0], "defocus_v_angstrom": d[:, 1], "angle_deg": d[:, 2],
        "pixel_size_angstrom": particles.pixel_size_angstrom, "voltage_kv": m.voltage_kv,
        "spherical_aberration_mm": m.spherical_aberration_mm,
        "amplitude_contrast": m.amplitude_contrast,
    }  # fmt: skip
    sums = []
    for half in (0, 1):
        sel = torch.arange(half, n, 2)
        part = {k: (v[sel] if isinstance(v, torch.Tensor) else v) for k, v in ctf.items()}
        sums.append(insert_particles(boxes[sel], rot[sel], ctf=part))
    ops = symmetry_matrices(symmetry)

    def finish(num, den):
        return symmetrise(wiener_map(num, den, box_px=b, wiener_constant=wiener_constant), ops)

    h1, h2 = finish(*sums[0]), finish(*sums[1])
    full = finish(sums[0][0] + sums[1][0], sums[0][1] + sums[1][1])
    truth = truth_map.double()
    if truth.shape[-1] != b:
        truth = fourier_crop_3d(truth, b)
    mask = soft_sphere(b, radius_px=mask_radius_fraction * b)
    k, fsc_half = fsc_curve(h1 * mask, h2 * mask)
    _, fsc_truth = fsc_curve(full * mask, truth * mask)
    px = particles.pixel_size_angstrom
    figures: dict[str, Any] = {"n_particles": n}
    for key, curve, thr in (("fsc_half_0.143", fsc_half, 0.143), ("fsc_truth_0.5", fsc_truth, 0.5)):
        figures[f"{key}_angstrom"] = resolution_at(k, curve, thr, pixel_size_angstrom=px)
        # True: the curve stays above the threshold up to the last shell (the grid limits it)
        figures[f"{key}_beyond_last_shell"] = bool((curve[1:] >= thr).all())
    k_a = (k / px).tolist()
    curves = {
        "fsc_half": {"k_per_angstrom": k_a, "fsc": fsc_half.tolist()},
        "fsc_truth": {"k_per_angstrom": k_a, "fsc": fsc_truth.tolist()},
    }
    return Result3D(figures, curves, (h1.float(), h2.float()))
