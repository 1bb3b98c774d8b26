"""CTF fit of a micrograph, CTFFIND4-style (Rohou & Grigorieff 2015, J. Struct. Biol. 192:216).

Built on torch-ctf's CTF model. Steps, as CTFFIND4:

1. power spectrum: averaged periodograms of half-overlapping tiles (:mod:`.spectrum`);
2. background: amplitude spectrum minus its box-filtered version;
3. 1D exhaustive search of the mean defocus: normalised cross-correlation between the radial
   average and ``CTF^2`` over ``[1/min_resolution, 1/max_resolution]``;
4. 2D refinement of defocus U/V and the astigmatism angle (Nelder-Mead on the normalised
   cross-correlation of the 2D spectrum with ``CTF^2``): its value is the ``score``;
5. fit resolution, as CTFFIND4 defines it (Rohou & Grigorieff 2015, section 2.4; cisTEM
   ``ctffind.cpp``, ``ComputeFRCBetween1DSpectrumAndFit`` and the criterion after it): the
   cross-correlation between the astigmatism-aware ("equi-phase") 1D average of the spectrum and
   the fitted ``CTF^2`` is computed in a window sliding over the rings, whose half-width is
   ``1.5 * max(n_bins / 40, (1 + 0.1 * n_extrema) * spacing of the last two extrema)``; scanning
   outwards from 10% of Nyquist, the fit is good until the correlation drops below 0.1 after more
   than 3 bins above 0.1, or below 0.5 after more than 3 bins above 0.66. CTFFIND4 first
   renormalises the 1D spectrum to equal Thon-ring heights (4.1.9); that step is left out here.

Angles follow torch-ctf: ``astigmatism_angle_deg`` is the direction of defocus U measured from the
x axis towards +y (rows); U >= V; defocus positive for underfocus, in Angstrom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize
from torch_ctf.ctf_utils import calculate_total_phase_shift

from cryozssr.evaluate.spectrum import (
    background_subtracted,
    centred,
    radial_profile,
    tile_power_spectrum,
)
from cryozssr.ops import rfft_frequency_grid
from cryozssr.physics import electron_wavelength_angstrom


@dataclass(frozen=True)
class CtfFitConfig:
    """Options of :func:`fit_ctf`. ``max_resolution_angstrom=None`` means 2.2 pixels."""

    tile_px: int = 512
    min_resolution_angstrom: float = 30.0
    max_resolution_angstrom: float | None = None
    min_defocus_angstrom: float = 3000.0
    max_defocus_angstrom: float = 50000.0
    defocus_step_angstrom: float = 250.0


@dataclass(frozen=True)
class Microscope:
    """What the CTF model needs besides defocus."""

    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07


@dataclass
class CtfFit:
    """Result of :func:`fit_ctf`. 1D profiles are ``(n_bins,)`` tensors at ``k_per_angstrom``."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    astigmatism_angle_deg: float
    score: float
    fit_resolution_angstrom: float
    k_per_angstrom: torch.Tensor = field(repr=False)
    spectrum_1d: torch.Tensor = field(repr=False)
    fit_1d: torch.Tensor = field(repr=False)
    fit_cc_1d: torch.Tensor = field(repr=False)
    spectrum_2d: torch.Tensor = field(repr=False)  # (n, n) centred background-subtracted spectrum

    def summary(self) -> dict[str, float]:
        return {
            "defocus_u_angstrom": self.defocus_u_angstrom,
            "defocus_v_angstrom": self.defocus_v_angstrom,
            "astigmatism_angstrom": self.defocus_u_angstrom - self.defocus_v_angstrom,
            "astigmatism_angle_deg": self.astigmatism_angle_deg,
            "score": self.score,
            "fit_resolution_angstrom": self.fit_resolution_angstrom,
        }


def ctf_squared_1d(k_per_angstrom: torch.Tensor, defocus_angstrom: torch.Tensor, scope: Microscope):
    """``CTF^2`` of torch-ctf's model, ``(..., n)`` for defoci ``(..., 1)`` and frequencies ``(n,)``."""
    phase = calculate_total_phase_shift(
        defocus_um=defocus_angstrom * 1e-4,
        voltage_kv=torch.as_tensor(scope.voltage_kv, dtype=torch.float64),
        spherical_aberration_mm=torch.as_tensor(scope.spherical_aberration_mm, dtype=torch.float64),
        phase_shift_degrees=torch.zeros((), dtype=torch.float64),
        amplitude_contrast_fraction=torch.as_tensor(scope.amplitude_contrast, dtype=torch.float64),
        fftfreq_grid_angstrom_squared=k_per_angstrom**2,
    )
    return torch.sin(phase) ** 2


def ctf_squared_astigmatic(
    k_per_angstrom: torch.Tensor,
    azimuth_rad: torch.Tensor,
    *,
    defocus_u_angstrom: float,
    defocus_v_angstrom: float,
    astigmatism_angle_deg: float,
    microscope: Microscope,
) -> torch.Tensor:
    """``CTF^2`` at frequencies ``|k|`` (1/A) and azimuths ``atan2(ky, kx)`` of any shape.

    torch-ctf's astigmatic model (``calculate_ctf_2d``: local defocus
    ``mean + (U - V) / 2 * cos(2 (azimuth - angle))``), evaluated on given pixels only so the 2D
    refinement costs microseconds per step.
    """
    mean = (defocus_u_angstrom + defocus_v_angstrom) / 2
    half = (defocus_u_angstrom - defocus_v_angstrom) / 2
    local = mean + half * torch.cos(2 * (azimuth_rad - math.radians(astigmatism_angle_deg)))
    return ctf_squared_1d(k_per_angstrom, local, microscope)


def _ncc(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    a = a - a.mean(dim=dim, keepdim=True)
    b = b - b.mean(dim=dim, keepdim=True)
    return (a * b).sum(dim) / torch.sqrt((a * a).sum(dim) * (b * b).sum(dim)).clamp(min=1e-300)


def windowed_fit_cc(
    spectrum_1d: torch.Tensor, fit_1d: torch.Tensor, first_bin: int
) -> torch.Tensor:
    """CTFFIND4's frequency-dependent correlation of a 1D spectrum and its fit (see module doc)."""
    n = spectrum_1d.shape[0]
    slope = torch.sign(torch.diff(fit_1d))
    turns = torch.zeros(n, dtype=torch.long)
    turns[2:] = (slope[1:] != slope[:-1]).long()
    extrema = torch.cumsum(turns, 0).tolist()
    half = [max(1, n // 40)] * n
    prev = 0
    for b in range(1, n):
        if extrema[b] != extrema[b - 1]:
            width = max(n // 40, int((1 + 0.1 * extrema[b]) * (b - prev + 1)))
            for i in range(prev, b):
                half[i] = min(width, n // 2 - 1)
            prev = b
    for i in range(prev, n):
        half[i] = half[prev - 1] if prev > 0 else half[i]
    cc = torch.ones(n, dtype=torch.float64)
    for b in range(first_bin, n):
        hw = int(half[b] * 1.5)
        lo, hi = b - hw, b + hw
        if lo < first_bin:
            lo, hi = first_bin, first_bin + 2 * hw + 1
        if hi >= n:
            hi, lo = n - 1, n - 2 * hw - 2
        lo = max(lo, 0)
        cc[b] = _ncc(spectrum_1d[lo : hi + 1], fit_1d[lo : hi + 1])
    return cc


def last_good_bin(cc: torch.Tensor, *, first_bin_to_check: int) -> int:
    """CTFFIND4's criterion on :func:`windowed_fit_cc`: index of the last bin with a good fit.

    If the correlation never drops, the last bin (the fit reaches Nyquist); if it is never above
    0.5, bin 1 (no fit), as CTFFIND4.
    """
    n = cc.shape[0]
    above_low = above_sig = above_high = 0
    for b in range(first_bin_to_check, n):
        v = float(cc[b])
        if (above_low > 3 and v < 0.1) or (above_high > 3 and v < 0.5):
            return b
        above_low += v > 0.1
        above_sig += v > 0.5
        above_high += v > 0.66
    return n - 1 if above_sig else 1


def fit_ctf(
    image: torch.Tensor,
    *,
    pixel_size_angstrom: float,
    microscope: Microscope = Microscope(),
    config: CtfFitConfig = CtfFitConfig(),
) -> CtfFit:
    """Fit defocus U/V, astigmatism angle, score and fit resolution of an ``(h, w)`` micrograph.

    ``image`` may live on any device; the fit runs on the CPU (a few hundred small evaluations)
    and the profiles in the result are CPU tensors. The fit range is
    ``[1 / config.min_resolution_angstrom, 1 / max_resolution]`` (default up to 2.2 px).
    """
    scope = microscope
    spec = background_subtracted(tile_power_spectrum(image.detach().cpu(), tile_px=config.tile_px))
    n = spec.shape[-2]
    ky, kx = rfft_frequency_grid((n, n))
    k2d = torch.sqrt(ky**2 + kx**2).double() / pixel_size_angstrom
    k_lo = 1.0 / config.min_resolution_angstrom
    k_hi = 1.0 / (config.max_resolution_angstrom or 2.2 * pixel_size_angstrom)
    k_hi = min(k_hi, 0.5 / pixel_size_angstrom)
    mask = (k2d >= k_lo) & (k2d <= k_hi)
    if int(mask.sum()) < 50:
        raise ValueError("the CTF fit range holds too few spectrum pixels")

    # 1D exhaustive search on the radial average
    n_bins = n // 2
    nyq = 0.5 / pixel_size_angstrom
    prof = radial_profile(spec, k2d, n_bins=n_bins, r_max=nyq)
    kb = (torch.arange(n_bins, dtype=torch.float64) + 0.5) * nyq / n_bins
    sel = (kb >= k_lo) & (kb <= k_hi)
    defoci = torch.arange(
        config.min_defocus_angstrom,
        config.max_defocus_angstrom + 1,
        config.defocus_step_angstrom,
        dtype=torch.float64,
    )
    scores = _ncc(prof[sel][None, :], ctf_squared_1d(kb[sel], defoci[:, None], scope))
    d0 = float(defoci[int(torch.argmax(scores))])

    # 2D refinement of (mean defocus, astigmatism vector) in micrometres
    target = spec[mask]
    k_fit = k2d[mask]
    azimuth = torch.atan2(ky.double(), kx.double())[mask]

    def cost(p: np.ndarray) -> float:
        mean_um, ax_um, ay_um = (float(v) for v in p)
        if mean_um <= 0:
            return 1.0
        half = math.hypot(ax_um, ay_um) * 1e4
        model = ctf_squared_astigmatic(
            k_fit, azimuth, defocus_u_angstrom=mean_um * 1e4 + half,
            defocus_v_angstrom=mean_um * 1e4 - half,
            astigmatism_angle_deg=0.5 * math.degrees(math.atan2(ay_um, ax_um)), microscope=scope,
        )  # fmt: skip
        return -float(_ncc(target, model))

    step = max(config.defocus_step_angstrom * 1e-4, 0.02)
    simplex = np.array(
        [[d0 * 1e-4, 0, 0], [d0 * 1e-4 + step, 0, 0], [d0 * 1e-4, step, 0], [d0 * 1e-4, 0, step]]
    )
    res = minimize(
        cost,
        simplex[0],
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-6},
    )
    mean_um, ax, ay = (float(v) for v in res.x)
    astig_um = math.hypot(ax, ay)
    angle = (0.5 * math.degrees(math.atan2(ay, ax))) % 180.0
    score = -float(res.fun)

    # fit resolution from the equi-phase 1D average
    mean_a = mean_um * 1e4
    phi = torch.atan2(ky.double(), kx.double())
    d_local = mean_a + astig_um * 1e4 * torch.cos(2 * (phi - math.radians(angle)))
    lam = electron_wavelength_angstrom(scope.voltage_kv)
    cs = scope.spherical_aberration_mm * 1e7
    c = lam * d_local * k2d**2 - 0.5 * cs * lam**3 * k2d**4
    disc = (lam * mean_a) ** 2 - 2 * cs * lam**3 * c
    k_eq2 = (lam * mean_a - torch.sqrt(disc.clamp(min=0))) / (cs * lam**3)
    k_eq = torch.sqrt(k_eq2.clamp(min=0))
    spec_1d = radial_profile(spec, k_eq, n_bins=n_bins, r_max=nyq)
    fit_1d = ctf_squared_1d(kb, torch.tensor(mean_a, dtype=torch.float64), scope)
    first = int(torch.searchsorted(kb, torch.tensor(k_lo, dtype=torch.float64)))
    cc = windowed_fit_cc(spec_1d, fit_1d, first)
    last = last_good_bin(cc, first_bin_to_check=max(first, int(0.1 * n_bins)))
    return CtfFit(
        defocus_u_angstrom=(mean_um + astig_um) * 1e4,
        defocus_v_angstrom=(mean_um - astig_um) * 1e4,
        astigmatism_angle_deg=angle,
        score=score,
        fit_resolution_angstrom=float(1.0 / kb[last]),
        k_per_angstrom=kb,
        spectrum_1d=spec_1d,
        fit_1d=fit_1d,
        fit_cc_1d=cc,
        spectrum_2d=centred(spec),
    )
