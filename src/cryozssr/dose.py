"""Radiation damage: the exposure filter of Grant & Grigorieff (2015), eLife 4:e06980.

The critical exposure ``N_e(k) = a k^b + c`` (e/A^2, k in 1/A; a=0.245, b=-1.665, c=2.81 at 300 kV,
scaled by 0.8 at 200 kV as in Unblur/Summovie) gives the attenuation of the amplitude at
spatial frequency k after cumulative exposure N: ``exp(-N / (2 N_e(k)))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from cryozssr.ops import rfft_radius

_A, _B, _C = 0.245, -1.665, 2.81


@dataclass(frozen=True)
class Exposure:
    """How a movie was exposed: what dose weighting and CTF models need.

    ``dose_per_frame_e_per_a2`` may be ``None`` (unknown): then no dose weighting is applied.
    ``exposure_frames``: which frames of the exposure the movie's frames are (``None``: all, in
    order); set by :meth:`subset` for a movie made of some of the frames (e.g. all but a held-out
    few), so that every frame keeps its own mid-frame dose (:func:`movie_frame_doses`).
    """

    pixel_size_angstrom: float
    dose_per_frame_e_per_a2: float | None = None
    voltage_kv: float = 300.0
    pre_exposure_e_per_a2: float = 0.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    exposure_frames: tuple[int, ...] | None = None

    def subset(self, frame_indices: Sequence[int]) -> Exposure:
        """The exposure of the movie's frames ``frame_indices`` seen as a movie of their own."""
        idx = tuple(int(i) for i in frame_indices)
        if self.exposure_frames is not None:
            idx = tuple(self.exposure_frames[i] for i in idx)
        return replace(self, exposure_frames=idx)


def voltage_scale(voltage_kv: float) -> float:
    """Critical-exposure scale factor for the accelerating voltage (Grant & Grigorieff 2015)."""
    if voltage_kv >= 250:
        return 1.0
    if voltage_kv >= 150:
        return 0.8
    return 0.7


def critical_exposure(k_per_angstrom: torch.Tensor, *, voltage_kv: float = 300.0) -> torch.Tensor:
    """Critical exposure in e/A^2 at spatial frequency ``k`` (1/A)."""
    k = k_per_angstrom.clamp(min=1e-6)
    return (_A * k.pow(_B) + _C) * voltage_scale(voltage_kv)


def exposure_filter_rfft(
    shape: tuple[int, int],
    cumulative_dose_e_per_a2: torch.Tensor,
    *,
    pixel_size_angstrom: float,
    voltage_kv: float = 300.0,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Amplitude attenuation ``(..., h, w//2+1)`` for each cumulative dose in ``(...)`` (e/A^2).

    Use the dose at the *middle* of a frame's exposure for that frame's filter.
    """
    dose = torch.as_tensor(cumulative_dose_e_per_a2, dtype=torch.float32, device=device)
    return _exposure_filter(
        dose, _twice_critical_exposure(shape, pixel_size_angstrom, voltage_kv, device)
    )


def _twice_critical_exposure(shape, pixel_size_angstrom, voltage_kv, device) -> torch.Tensor:
    """``2 N_e(k)`` on the ``rfft2`` grid of ``shape``, float32."""
    k = rfft_radius(shape, device=device) / pixel_size_angstrom
    return 2.0 * critical_exposure(k, voltage_kv=voltage_kv)


def _exposure_filter(dose: torch.Tensor, twice_ne: torch.Tensor) -> torch.Tensor:
    return torch.exp(-dose[..., None, None] / twice_ne)


def frame_doses(
    n_frames: int, dose_per_frame_e_per_a2: float, *, pre_exposure: float = 0.0, device=None
):
    """Mid-frame cumulative dose of each frame, ``(n_frames,)`` in e/A^2 (float32, on ``device``)."""
    idx = torch.arange(n_frames, dtype=torch.float32, device=device)
    return pre_exposure + (idx + 0.5) * dose_per_frame_e_per_a2


def movie_frame_doses(exposure: Exposure, n_frames: int, *, device=None) -> torch.Tensor:
    """Mid-frame cumulative dose of each of the movie's ``n_frames`` frames (e/A^2, float32).

    Frame ``i`` is frame ``exposure.exposure_frames[i]`` of the exposure (frame ``i`` when unset).
    ``exposure.dose_per_frame_e_per_a2`` must be known.
    """
    d = exposure.dose_per_frame_e_per_a2
    if d is None:
        raise ValueError("the dose per frame is unknown")
    idx = exposure.exposure_frames
    if idx is None:
        return frame_doses(n_frames, d, pre_exposure=exposure.pre_exposure_e_per_a2, device=device)
    if len(idx) != n_frames:
        raise ValueError(f"the exposure describes {len(idx)} frames, the movie has {n_frames}")
    doses = frame_doses(max(idx) + 1, d, pre_exposure=exposure.pre_exposure_e_per_a2, device=device)
    return doses[list(idx)]


def dose_weights_rfft(
    shape: tuple[int, int],
    n_frames: int,
    *,
    dose_per_frame_e_per_a2: float,
    pixel_size_angstrom: float,
    voltage_kv: float = 300.0,
    pre_exposure: float = 0.0,
    frame_indices: Sequence[int] | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Per-frame weights ``(t, h, w//2+1)`` of a dose-weighted *average* (Grant & Grigorieff 2015).

    ``w_t(k) = q_t(k) / sqrt(t * sum_s q_s(k)^2)`` with ``q_t`` the exposure filter at frame t's
    mid-frame dose. The weights maximise the SNR at every k (matched filter), make the noise power
    flat in k (equal to that of the plain average), and reduce to the plain average at k = 0.
    ``frame_indices`` averages a subset of the movie's ``n_frames`` (e.g. the even frames), each at
    its own dose; ``t`` is then their number.
    """
    doses = frame_doses(n_frames, dose_per_frame_e_per_a2, pre_exposure=pre_exposure, device=device)
    if frame_indices is not None:
        doses = doses[list(frame_indices)]
    weights = DoseWeights(
        shape, doses, pixel_size_angstrom=pixel_size_angstrom, voltage_kv=voltage_kv, device=device
    )
    return torch.stack([weights[n] for n in range(doses.numel())])


class DoseWeights:
    """The weights of :func:`dose_weights_rfft` for frames at ``doses`` (mid-frame, e/A^2), made one
    frame at a time (``weights[n]``, ``(h, w//2+1)``): memory is two frames' worth, not ``t``."""

    def __init__(
        self,
        shape: tuple[int, int],
        doses: torch.Tensor,
        *,
        pixel_size_angstrom: float,
        voltage_kv: float = 300.0,
        device: torch.device | None = None,
    ) -> None:
        self.shape, self.doses, self.device = shape, doses, device
        self.pixel_size_angstrom, self.voltage_kv = pixel_size_angstrom, voltage_kv
        # the critical exposure once (not per frame): the filters are exp(-dose / (2 N_e))
        self._twice_ne = _twice_critical_exposure(shape, pixel_size_angstrom, voltage_kv, device)
        total = sum(self._filter(n).square() for n in range(doses.numel()))
        self.norm = torch.sqrt(doses.numel() * total).clamp(min=1e-12)

    def _filter(self, n: int) -> torch.Tensor:
        dose = torch.as_tensor(self.doses[n], dtype=torch.float32, device=self.device)
        return _exposure_filter(dose, self._twice_ne)

    def __getitem__(self, n: int) -> torch.Tensor:
        return self._filter(n) / self.norm
