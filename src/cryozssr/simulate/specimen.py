"""What the specimen does: where the particles sit, how the ice looks, how it all moves.

The field of view is periodic (a torus): particles, ice and motion wrap around the edges, exactly
as :func:`cryozssr.ops.fourier_shift` does; CTF delocalisation wraps too.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryozssr.errors import OptionError
from cryozssr.motion.field import MotionField
from cryozssr.physics import interaction_constant
from cryozssr.simulate.scattering import (
    ICE_MOLECULES_PER_A3,
    POTENTIAL_PER_SCATTERING_V_A2,
    ice_mean_inner_potential_volt,
    ice_structure_factor,
    water_scattering_squared,
)


def place_particles(
    n: int, shape: tuple[int, int], min_distance_px: float, rng: np.random.Generator
) -> np.ndarray:
    """``(n, 2)`` ``(y, x)`` positions uniform on the periodic field, at least ``min_distance_px``
    apart (random positions relaxed by pairwise repulsion). Raises OptionError if they cannot fit."""
    h, w = shape
    size = np.array([h, w], dtype=np.float64)
    pos = rng.uniform(0, 1, (n, 2)) * size
    if n < 2:
        return pos
    for _ in range(2000):
        d = pos[:, None, :] - pos[None, :, :]
        d -= size * np.round(d / size)  # minimum image on the torus
        dist = np.sqrt((d**2).sum(-1)) + np.eye(n) * 1e9
        overlap = np.clip(min_distance_px * 1.02 - dist, 0, None)
        if overlap.max() <= 0.02 * min_distance_px and (dist >= min_distance_px).all():
            return pos % size
        push = (overlap / np.maximum(dist, 1e-6))[:, :, None] * d * 0.5
        pos = (pos + push.sum(axis=1) + rng.normal(0, 1e-3, pos.shape)) % size
    raise OptionError(
        f"cannot place {n} non-overlapping particles ({min_distance_px:.0f} px apart) in a "
        f"{h}x{w} px field: lower --particles or raise --size-hr"
    )


def _decay_profile(n_frames: int, tau_frames: float) -> np.ndarray:
    """0 at frame 0 rising to 1 at the last frame, fast first then slowing."""
    t = np.arange(n_frames, dtype=np.float64)
    if n_frames == 1:
        return t
    prof = 1 - np.exp(-t / tau_frames)
    return prof / prof[-1]


def random_motion(
    n_frames: int,
    shape: tuple[int, int],
    *,
    pixel_size_angstrom: float,
    drift_range_angstrom: tuple[float, float],
    local_range_angstrom: tuple[float, float],
    local_grid: tuple[int, int],
    rng: np.random.Generator,
) -> MotionField:
    """Beam-induced motion in pixels: a curved global drift, fast in the first frames then slowing
    (path length drawn from ``drift_range_angstrom``), plus a smooth local field whose RMS
    displacement at the last frame is drawn from ``local_range_angstrom``."""
    steps = np.exp(-np.arange(max(n_frames - 1, 0)) / max(n_frames / 6, 1.0)) + 0.08
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, steps.shape))
    step_xy = np.stack([np.sin(heading), np.cos(heading)], -1) * steps[:, None]  # (y, x)
    length = rng.uniform(*drift_range_angstrom) / pixel_size_angstrom
    step_xy *= length / max(steps.sum(), 1e-12)
    global_px = np.concatenate([np.zeros((1, 2)), np.cumsum(step_xy, axis=0)])

    gh, gw = local_grid
    yy, xx = np.meshgrid((np.arange(gh) + 0.5) / gh, (np.arange(gw) + 0.5) / gw, indexing="ij")
    field = np.zeros((gh, gw, 2))
    for _ in range(3):  # a few long-wavelength modes: smooth across the field of view
        ky, kx = rng.uniform(-1.5, 1.5, 2)
        amp, phase = rng.normal(0, 1, 2), rng.uniform(0, 2 * np.pi, 2)
        wave = np.cos(2 * np.pi * (ky * yy + kx * xx)[..., None] + phase)
        field += amp * wave
    field -= field.mean(axis=(0, 1))
    rms = math.sqrt(float((field**2).sum(-1).mean())) or 1.0
    target = rng.uniform(*local_range_angstrom) / pixel_size_angstrom
    profile = _decay_profile(n_frames, max(n_frames / 4, 1.0))
    local = profile[:, None, None, None] * (field * target / rms)[None]
    return MotionField(
        torch.as_tensor(global_px, dtype=torch.float32),
        tuple(shape),
        torch.as_tensor(local, dtype=torch.float32),
    )


def ice_amplitude_rfft(
    shape: tuple[int, int],
    *,
    pixel_size_angstrom: float,
    thickness_angstrom: float,
    voltage_kv: float,
    thickness_variation: float = 0.05,
    correlation_length_angstrom: float = 400.0,
) -> torch.Tensor:
    """Amplitude ``(h, w//2+1)`` that turns the rfft of unit white noise into the rfft of the phase
    (rad) a vitreous ice slab adds, sampled at ``pixel_size_angstrom``; zero at DC.

    The phase is a Gaussian random field of power spectrum ``P(q) / a^2`` per pixel, with two
    parts: (1) the molecular structure of the water, ``t n |lambda gamma f_H2O(q)|^2 S(q)``
    (thickness, number density, water scattering factor, structure factor with its 3.7 A ring);
    (2) a smooth thickness variation (RMS ``thickness_variation`` of the thickness, Gaussian
    correlation of ``correlation_length_angstrom``) times the ice's mean inner potential.
    """
    h, w = shape
    ky = torch.fft.fftfreq(h, d=pixel_size_angstrom, dtype=torch.float64)
    kx = torch.fft.rfftfreq(w, d=pixel_size_angstrom, dtype=torch.float64)
    q = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    lam_gamma = interaction_constant(voltage_kv) * POTENTIAL_PER_SCATTERING_V_A2  # lambda gamma, A
    qs = np.linspace(0, float(q.max()) + 1e-6, 512)
    spec = [water_scattering_squared(v) * ice_structure_factor(v) for v in qs]
    spec_q = torch.from_numpy(np.interp(q.numpy(), qs, spec))
    psd = thickness_angstrom * ICE_MOLECULES_PER_A3 * lam_gamma**2 * spec_q  # rad^2 A^2
    rms = interaction_constant(voltage_kv) * ice_mean_inner_potential_volt()
    rms *= thickness_angstrom * thickness_variation
    ell = correlation_length_angstrom
    psd = psd + rms**2 * 2 * math.pi * ell**2 * torch.exp(-2 * math.pi**2 * ell**2 * q**2)
    amplitude = (torch.sqrt(psd) / pixel_size_angstrom).to(torch.float32)
    amplitude[0, 0] = 0
    return amplitude
