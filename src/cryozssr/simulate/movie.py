"""One simulated movie: image formation, frame by frame, with its ground truth.

For every frame ``t`` (fine grid, ``oversample`` x finer than the HR pixel):

1. the particles' phase images (central slices of the potential, computed once) are placed at
   their frame-``t`` positions: frame-0 position plus the motion field at that position (global
   drift + local motion), with exact sub-pixel Fourier shifts in small boxes. The trajectory gives
   each frame's *mean* position; during the exposure the specimen moves at the trajectory's
   central-difference velocity, a ``sinc`` blur along the motion (per particle; the global one
   for the ice);
2. radiation damage: the Grant & Grigorieff (2015) exposure filter ``Q_t(k)`` at the frame's
   mid-frame cumulative dose, on the particles. The ice (molecular texture + thickness variation,
   :func:`~cryozssr.simulate.specimen.ice_amplitude_rfft`) moves with the specimen (global drift
   plus the local field, as the particles it holds do); radiolysis
   rearranges it too, so its static part fades as ``Q_t`` and a fresh random part of power
   ``1 - Q_t^2`` replaces it (the ice looks the same in every frame, but only its undamaged
   structure is shared between frames and belongs to the ground truth);
3. the weak-phase image through the CTF (torch-ctf; per-movie defocus and astigmatism):
   ``I = 1 - 2 F^-1[CTF . phi]``, with the amplitude contrast inside the CTF's phase; the
   exposure is the dose *detected*, so the DC of the contrast is removed (mean ``I`` = 1);
4. the detector: MTF and pixel aperture (:mod:`cryozssr.simulate.detector`), sampled at the HR
   pixel centres (aliasing what lies above the HR Nyquist frequency), then counts of the expected
   ``dose x pixel area x I`` electrons per pixel with the detector's counting statistics
   (:mod:`cryozssr.simulate.counting`: efficiency, coincidence loss, pixel-correlated multiple
   counting; ``noise_model="poisson"`` or ``detector="ideal"``: independent Poisson counts).

The LR movie is ``box_sum(hr_counts)``: a camera with 2x larger pixels. The ground-truth
micrographs are the expected HR frame without damage or motion (specimen at frame 0), in counts
per HR pixel per frame, with and without the CTF (``CTF = 1``: ``dose x area x (1 - 2 phi)``, times
the detector's mean counts per electron); both include the detector's MTF, as any HR frame does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch_ctf import calculate_ctf_2d

from cryozssr.dose import critical_exposure, frame_doses
from cryozssr.fourier import phase_ramp
from cryozssr.motion.field import MotionField
from cryozssr.motion.warp import tile_centres, tiled_shift
from cryozssr.ops import box_sum, rfft_radius
from cryozssr.simulate.config import SimulationConfig
from cryozssr.simulate.counting import (
    count_electrons,
    counting_statistics,
    multiple_count_transfer_rfft,
)
from cryozssr.simulate.detector import detector_transfer_rfft
from cryozssr.simulate.orientation import euler_to_matrix, matrix_to_euler, random_rotations
from cryozssr.simulate.potential import Potential, build_potential
from cryozssr.simulate.specimen import ice_amplitude_rfft, place_particles, random_motion

log = logging.getLogger(__name__)
ICE_TILE_PX = (
    32  # tiles (fine px) of the ice's local deformation; local motion stays well below this
)


@dataclass(frozen=True)
class MovieCTF:
    """Per-movie CTF, RELION conventions: defocus U/V in A (underfocus positive) and the angle
    (degrees) of the U axis from the x axis, towards +y."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    defocus_angle_deg: float

    @property
    def defocus_mean_um(self) -> float:
        return (self.defocus_u_angstrom + self.defocus_v_angstrom) / 2e4


@dataclass(frozen=True)
class SimulatedMovie:
    """A simulated movie and everything that made it.

    Attributes
    ----------
    hr_counts, lr_counts:
        ``(t, H, W)`` and ``(t, H/2, W/2)`` int32 counts; ``lr_counts == box_sum(hr_counts)``.
    truth_ctf, truth_noctf:
        ``(H, W)`` float32 noiseless HR micrographs (counts per HR pixel per frame), undamaged,
        specimen at its frame-0 position; with and without the CTF.
    motion:
        :class:`~cryozssr.motion.field.MotionField` in HR pixels (global + local).
    particles_yx_px:
        ``(n, 2)`` frame-0 centres ``(y, x)`` in HR pixels (pixel centres at integers).
    particles_euler_deg:
        ``(n, 3)`` RELION ``(rot, tilt, psi)``.
    ctf:
        :class:`MovieCTF` of the movie (every particle has the movie's defocus).
    """

    hr_counts: torch.Tensor
    lr_counts: torch.Tensor
    truth_ctf: torch.Tensor
    truth_noctf: torch.Tensor
    motion: MotionField
    particles_yx_px: np.ndarray
    particles_euler_deg: np.ndarray
    ctf: MovieCTF


def _phase_ramp(shape, shift, *, device=None) -> torch.Tensor:
    """:func:`cryozssr.fourier.phase_ramp` on the rfft grid of ``shape`` for ``(..., 2)`` shifts."""
    shift = torch.as_tensor(shift, dtype=torch.float32, device=device)
    ky = torch.fft.fftfreq(shape[0], device=device)
    kx = torch.fft.rfftfreq(shape[1], device=device)
    return phase_ramp(ky, kx, shift)


def _motion_blur(shape, travel, *, device=None) -> torch.Tensor:
    """Transfer ``sinc(k . travel)`` ``(..., h, w//2+1)`` of a uniform motion over ``(..., 2)``
    ``(y, x)`` pixels during an exposure (centred on the mean position)."""
    travel = torch.as_tensor(travel, dtype=torch.float32, device=device)
    ky = torch.fft.fftfreq(shape[0], device=device)
    kx = torch.fft.rfftfreq(shape[1], device=device)
    arg = ky[:, None] * travel[..., 0, None, None] + kx[None, :] * travel[..., 1, None, None]
    return torch.sinc(arg)


def _place(
    boxes_rfft: torch.Tensor,
    fine_yx: torch.Tensor,
    shape: tuple[int, int],
    travel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sum of ``(n, b, b)`` boxes (given as rfft) centred (box pixel ``b//2``) at ``(n, 2)``
    sub-pixel positions of a periodic ``shape`` image, each blurred by its ``(n, 2)`` travel
    during the exposure (pixels) if given."""
    image = torch.zeros(shape, dtype=torch.float32, device=boxes_rfft.device)
    if boxes_rfft.shape[0] == 0:
        return image
    b = boxes_rfft.shape[-2]
    whole = torch.floor(fine_yx)
    spec = boxes_rfft * _phase_ramp((b, b), fine_yx - whole, device=boxes_rfft.device)
    if travel is not None:
        spec = spec * _motion_blur((b, b), travel, device=boxes_rfft.device)
    shifted = torch.fft.irfft2(spec, s=(b, b))
    idx = torch.arange(b, device=boxes_rfft.device)
    start = whole.long() - b // 2
    rows = (start[:, 0, None] + idx) % shape[0]
    cols = (start[:, 1, None] + idx) % shape[1]
    image.index_put_((rows[:, :, None], cols[:, None, :]), shifted, accumulate=True)
    return image


def potential_for(config: SimulationConfig) -> Potential:
    """The (memoised) potential of ``config``'s model, symmetry, pixel size and B-factor."""
    return build_potential(
        config.model,
        config.symmetry,
        config.pixel_size_hr_angstrom,
        oversample=config.oversample,
        extra_bfactor_a2=config.extra_bfactor_a2,
    )


def draw_ctf(config: SimulationConfig, rng: np.random.Generator) -> MovieCTF:
    """Defocus uniform in the configured range, astigmatism |U - V| uniform up to the maximum."""
    mean = rng.uniform(*config.defocus_range_um) * 1e4
    astig = rng.uniform(0, config.astigmatism_max_angstrom)
    return MovieCTF(mean + astig / 2, mean - astig / 2, float(rng.uniform(0, 180)))


def simulate_movie(
    config: SimulationConfig,
    *,
    seed: int | Sequence[int],
    potential: Potential | None = None,
) -> SimulatedMovie:
    """Simulate one movie (see the module docstring for the physics).

    ``seed`` (an int or a sequence such as ``(seed, movie_index)``) fixes every random draw: the
    same seed gives the same movie. ``potential`` defaults to :func:`build_potential` of the
    config's model (memoised); computation follows its device.
    """
    config.validate()
    if potential is None:
        potential = potential_for(config)
    if not math.isclose(potential.pixel_size_hr_angstrom, config.pixel_size_hr_angstrom) or (
        potential.oversample != config.oversample
    ):
        raise ValueError("the potential was built for another HR pixel size or oversampling")
    device = potential.volume_volt.device
    s = potential.oversample
    ss = np.random.SeedSequence(seed)
    rng = np.random.default_rng(ss)
    gen = torch.Generator(device=device).manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))

    shape = config.shape_hr
    fine = (shape[0] * s, shape[1] * s)
    px = config.pixel_size_hr_angstrom
    ctf = draw_ctf(config, rng)
    min_dist = (2 * potential.radius_angstrom + 2.0) / px
    yx0 = place_particles(config.particles, shape, min_dist, rng)
    rot = random_rotations(config.particles, rng)
    euler = matrix_to_euler(rot)
    matrices = torch.as_tensor(euler_to_matrix(*euler.T), dtype=torch.float32)
    motion = random_motion(
        config.frames,
        shape,
        pixel_size_angstrom=px,
        drift_range_angstrom=config.drift_range_angstrom,
        local_range_angstrom=config.local_motion_range_angstrom,
        local_grid=config.local_grid,
        rng=rng,
    )

    n = potential.box_size
    if config.particles:
        boxes = potential.project(matrices.reshape(-1, 3, 3), voltage_kv=config.voltage_kv)
        boxes_rfft = torch.fft.rfft2(boxes.to(device))
    else:
        boxes_rfft = torch.zeros((0, n, n // 2 + 1), dtype=torch.complex64, device=device)
    ctf_rfft = calculate_ctf_2d(
        defocus=ctf.defocus_mean_um,
        astigmatism=(ctf.defocus_u_angstrom - ctf.defocus_v_angstrom) / 2e4,
        astigmatism_angle=ctf.defocus_angle_deg,
        voltage=config.voltage_kv,
        spherical_aberration=config.spherical_aberration_mm,
        amplitude_contrast=config.amplitude_contrast,
        phase_shift=0.0,
        pixel_size=potential.voxel_size_angstrom,
        image_shape=fine,
        rfft=True,
        fftshift=False,
    ).to(device)
    # detector MTF + aperture, then shift so that fine pixel s*i samples HR pixel i's centre
    detector = detector_transfer_rfft(
        fine,
        oversample=s,
        detector=config.detector,
        voltage_kv=config.voltage_kv,
        device=device,
    ) * _phase_ramp(fine, [-(s - 1) / 2] * 2, device=device)
    stats = counting_statistics(
        config.detector,
        config.noise_model,
        dose_rate_e_per_px_per_s=config.dose_rate_e_per_px_per_s,
    )
    if stats is not None and stats.multiple_count_probability > 0:
        # counting shares events with neighbours after the pixel: the expected image carries the
        # rest of the measured MTF, so that the counted frames show the tabulated one
        detector = detector / multiple_count_transfer_rfft(
            fine, oversample=s, p=stats.multiple_count_probability, device=device
        )
    detector[0, 0] = 0  # the exposure is the detected dose: no DC contrast
    ice_amp = ice = None
    if config.ice and config.ice_thickness_angstrom > 0:
        ice_amp = ice_amplitude_rfft(
            fine,
            pixel_size_angstrom=potential.voxel_size_angstrom,
            thickness_angstrom=config.ice_thickness_angstrom,
            voltage_kv=config.voltage_kv,
        ).to(device)
        white = torch.randn(fine, generator=gen, device=device)
        ice = torch.fft.rfft2(white) * ice_amp
        fresh_amp = ice_amp * math.sqrt(fine[0] * fine[1] / 2)  # rfft of unit white noise

    # local (non-global) motion of the ice at the fine-grid tile centres of tiled_shift, fine px
    ice_local = None
    if ice is not None and motion.local_shifts_px is not None:
        cy, cx = tile_centres(fine, ICE_TILE_PX)
        yy, xx = torch.meshgrid((cy + 0.5) / s - 0.5, (cx + 0.5) / s - 0.5, indexing="ij")
        at = torch.stack([yy.flatten(), xx.flatten()], dim=-1)
        local = motion.shifts_at(at) - motion.global_shifts_px[:, None, :]
        ice_local = (s * local).reshape(config.frames, len(cy), len(cx), 2).to(device)

    counts_per_px = config.counts_per_hr_pixel_per_frame
    yx0_t = torch.as_tensor(yx0, dtype=torch.float32, device=device).reshape(-1, 2)
    shifts = motion.shifts_at(yx0_t.cpu()).to(device)  # (t, n, 2) HR px
    # travel during each frame's exposure: the trajectory's central difference (HR px)
    if config.frames > 1:
        travel = torch.gradient(shifts, dim=0)[0]
        travel_global = torch.gradient(motion.global_shifts_px.to(device), dim=0)[0]
    else:
        travel = torch.zeros_like(shifts)
        travel_global = torch.zeros((1, 2), device=device)
    doses = frame_doses(config.frames, config.dose_per_frame_e_per_a2)

    # Grant & Grigorieff critical exposure on the fine grid (cryozssr.dose), computed once
    k_per_a = rfft_radius(fine, device=device) / potential.voxel_size_angstrom
    critical = critical_exposure(k_per_a, voltage_kv=config.voltage_kv)

    def phase_rfft(t: int | None) -> torch.Tensor:
        if t is None:
            spec = torch.fft.rfft2(_place(boxes_rfft, s * (yx0_t + 0.5) - 0.5, fine))
            return spec if ice is None else spec + ice
        yx = yx0_t + shifts[t]
        spec = torch.fft.rfft2(_place(boxes_rfft, s * (yx + 0.5) - 0.5, fine, s * travel[t]))
        if not config.radiation_damage:
            q = torch.ones((), device=device)
        else:
            q = torch.exp(-doses[t] / (2 * critical))
        spec *= q
        if ice is not None:
            ramp = _phase_ramp(fine, motion.global_shifts_px[t].to(device) * s, device=device)
            scale = fresh_amp * torch.sqrt((1 - q * q).clamp(min=0))
            re, im = torch.randn((2, *scale.shape), generator=gen, device=device)
            ramp = ramp * _motion_blur(fine, s * travel_global[t], device=device)
            shared = ice * q
            if ice_local is not None:  # the ice layer deforms with the particles it holds
                shared = torch.fft.rfft2(
                    tiled_shift(torch.fft.irfft2(shared, s=fine), ice_local[t], tile_px=ICE_TILE_PX)
                )
            spec += (shared + torch.complex(re * scale, im * scale)) * ramp
        return spec

    def image(spec: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        contrast = torch.fft.irfft2(spec * transfer, s=fine)[::s, ::s]
        return counts_per_px * (1 - 2 * contrast)

    with_ctf = ctf_rfft * detector
    hr = torch.empty((config.frames, *shape), dtype=torch.int32, device=device)
    clipped = 0
    for t in range(config.frames):
        expected = image(phase_rfft(t), with_ctf)
        clipped += int((expected < 0).sum())
        hr[t] = count_electrons(expected, stats=stats, generator=gen)
    if clipped:
        log.warning("weak-phase intensity < 0 at %d pixel-frames (clipped to 0)", clipped)
    spec0 = phase_rfft(None)
    per_electron = 1.0 if stats is None else stats.recorded_fraction  # mean counts per electron
    return SimulatedMovie(
        hr_counts=hr,
        lr_counts=box_sum(hr),
        truth_ctf=(per_electron * image(spec0, with_ctf)).float(),
        truth_noctf=(per_electron * image(spec0, detector)).float(),
        motion=motion,
        particles_yx_px=yx0,
        particles_euler_deg=euler,
        ctf=ctf,
    )
