r"""Refine a movie's motion against the forward model of its own super-resolved estimate.

Frame-to-sum alignment (:mod:`cryozssr.motion.estimate`) compares LR frames with an LR sum, so it
cannot see detail past the LR Nyquist. Here every frame is compared with what the super-resolution
model says it should be: the HR estimate moved by the frame's shift, filtered by the frame's
exposure and box-summed onto the LR grid,

.. math::

   Y_t \approx \alpha_t\, D B S_{2 s_t} \frac{q_t}{\bar q} X + c_t,

and each frame's shift ``s_t`` (LR px) is found by Gauss-Newton steps on the least-squares misfit
(the gain ``alpha_t`` and offset ``c_t`` are free: the estimate's scale need not match). ``X`` is
never built from the frame it is compared with: even frames are compared with the reconstruction
of the odd frames (``misr``) and odd frames with the even one, so a frame's noise cannot pull
its shift towards where it already is (the bias frame-to-sum alignment avoids by leaving each
frame out of its own sum). Each half's reconstruction sits where its own frames' shifts put it
(their mean error moves it), so the even frames' shifts are then moved by the measured offset
between the two reconstructions (:func:`cryozssr.register.estimate_shift` on the HR grid).

With a patch grid the same steps run per patch (each patch's total shift, global plus local), and
the patches' trajectories go through the local motion model of :mod:`cryozssr.motion._local`
(smooth in time and space, significance-tested), so refinement cannot run away any more than the
estimate can. The global trajectory is smoothed as :mod:`cryozssr.motion.estimate` smooths it,
never across a jump. Everything runs on a bounded central crop (``crop_px``), so the cost does not
grow with the frame size; local motion is refined only when the crop holds the whole frame.

Pure tensor code; follows the device of ``frames``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from cryozssr.dose import Exposure, exposure_filter_rfft, movie_frame_doses
from cryozssr.errors import OptionError
from cryozssr.motion._align import smooth_trajectory
from cryozssr.motion._local import fit_local_model
from cryozssr.motion.estimate import _taper, patch_geometry
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum
from cryozssr.register import estimate_shift

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineConfig:
    """Options of :func:`refine_motion`. Pixels are LR pixels of the movie.

    Attributes
    ----------
    crop_px:
        Side of the central crop the refinement runs on (bounded cost at any frame size).
    n_steps:
        Gauss-Newton steps per frame (and patch) against each reference.
    n_rounds:
        Rounds of (reference reconstruction, Gauss-Newton steps).
    smoothing_frames:
        Savitzky-Golay window of the global trajectory's smoothing (as motion estimation's).
    max_change_px:
        Sanity bound: a refinement that moves any frame (or patch) by more than this from the
        estimate is rejected and the estimate kept (with a warning).
    regularisation:
        ``misr``'s Tikhonov weight for the even/odd references.
    patch_overlap:
        Patch size as a multiple of the local grid's node spacing (as motion estimation's).
    """

    crop_px: int = 768
    n_steps: int = 3
    n_rounds: int = 2
    smoothing_frames: int = 7
    max_change_px: float = 1.0
    regularisation: float = 0.25
    patch_overlap: float = 2.0

    def __post_init__(self) -> None:
        if self.crop_px < 64 or self.n_steps < 1 or self.n_rounds < 1:
            raise OptionError("refine needs crop_px >= 64, n_steps >= 1 and n_rounds >= 1")
        if not self.max_change_px > 0:
            raise OptionError(f"max_change_px must be > 0, got {self.max_change_px}")


@dataclass(frozen=True)
class RefineInfo:
    """What the refinement did (for the run record): RMS change of the shifts in LR px."""

    rms_change_global_px: float
    rms_change_local_px: float | None
    crop_px: tuple[int, int]
    accepted: bool
    local_refined: bool


def forward_model_shifts(
    frames: torch.Tensor,
    references: torch.Tensor,
    shifts_px: torch.Tensor,
    *,
    exposure_filters: torch.Tensor,
    n_steps: int = 3,
) -> torch.Tensor:
    """Refined shifts ``(..., t, 2)`` of LR ``frames (..., t, h, w)`` against HR references.

    ``references (..., 2, 2h, 2w)``: the even frames' and the odd frames' reconstruction; frame
    ``t`` is compared with the other parity's. ``shifts_px (..., t, 2)``: start values (LR px,
    small: the frames are cut near their integer shift). ``exposure_filters (t, 2h, w + 1)``:
    ``q_t / qbar`` on the references' ``rfft2`` grid. A raised-cosine taper weights the misfit.
    """
    *lead, t, h, w = frames.shape
    dev = frames.device
    ky = torch.fft.fftfreq(2 * h, device=dev)[:, None]
    kx = torch.fft.rfftfreq(2 * w, device=dev)[None, :]
    window = _taper(h, device=dev)[:, None] * _taper(w, device=dev)[None, :]
    spectra = torch.fft.rfft2(references.float())  # (..., 2, 2h, w + 1)
    shifts = shifts_px.to(torch.float64).clone()
    two_pi = 2 * math.pi
    for j in range(t):
        y = frames[..., j, :, :].float()
        ref = spectra[..., 1 - j % 2, :, :] * exposure_filters[j]
        for _ in range(n_steps):
            s = shifts[..., j, :].to(torch.float32)  # (..., 2)
            hr = 2 * s  # HR px
            ramp = torch.exp(
                -1j * two_pi * (ky * hr[..., 0, None, None] + kx * hr[..., 1, None, None])
            )
            moved = ref * ramp
            model = box_sum(torch.fft.irfft2(moved, s=(2 * h, 2 * w)))
            d_y = box_sum(torch.fft.irfft2(moved * (-1j * two_pi * 2 * ky), s=(2 * h, 2 * w)))
            d_x = box_sum(torch.fft.irfft2(moved * (-1j * two_pi * 2 * kx), s=(2 * h, 2 * w)))
            # linear least squares in (alpha, c, alpha dy, alpha dx), weighted by the taper
            basis = torch.stack([model, torch.ones_like(model), d_y, d_x], dim=-3)
            wb = basis * window
            normal = torch.einsum("...ahw,...bhw->...ab", wb, basis).double()
            rhs = torch.einsum("...ahw,...hw->...a", wb, y).double()
            coef = torch.linalg.solve(normal + 1e-9 * _trace_eye(normal), rhs)
            alpha = coef[..., 0].clamp(min=1e-6)
            step = coef[..., 2:] / alpha[..., None]
            shifts[..., j, :] += step.clamp(-0.5, 0.5)
    return shifts.reshape(*lead, t, 2)


def _trace_eye(m: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    return m.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] * eye


def exposure_filter_ratios(
    shape_hr: tuple[int, int], exposure: Exposure | None, n_frames: int, *, device
) -> torch.Tensor:
    """``q_t / qbar`` on the ``rfft2`` grid of an ``(H, W)`` HR image, ``(t, H, W // 2 + 1)``."""
    if exposure is None or exposure.dose_per_frame_e_per_a2 is None:
        return torch.ones(n_frames, shape_hr[0], shape_hr[1] // 2 + 1, device=device)
    doses = movie_frame_doses(exposure, n_frames, device=device)  # a subset's own doses too
    q = exposure_filter_rfft(
        shape_hr,
        doses,
        pixel_size_angstrom=exposure.pixel_size_angstrom / 2,
        voltage_kv=exposure.voltage_kv,
        device=device,
    )
    return q / q.pow(2).mean(dim=0).sqrt().clamp(min=1e-12)


def refine_motion(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None,
    config: RefineConfig = RefineConfig(),
) -> tuple[MotionField, RefineInfo]:
    """Refine ``motion`` (LR px) of ``(t, h, w)`` ``frames`` against the forward model (module doc).

    Returns the refined :class:`MotionField` (``global_shifts_px[0] == 0``) and what changed.
    """
    from cryozssr.baselines.misr import misr  # the estimate the forward model starts from

    t, h, w = frames.shape
    dev = frames.device
    old = motion.global_shifts_px.to(torch.float64)
    whole = old.round()
    span = (whole.max(dim=0).values - whole.min(dim=0).values).long().tolist()
    ch = min(config.crop_px, h - span[0]) // 2 * 2
    cw = min(config.crop_px, w - span[1]) // 2 * 2
    if t < 4 or min(ch, cw) < 64:
        info = RefineInfo(0.0, None, (max(ch, 0), max(cw, 0)), False, False)
        return motion, info
    starts = []
    for n, c, axis in ((h, ch, 0), (w, cw, 1)):
        lo, hi = -int(whole[:, axis].min()), n - c - int(whole[:, axis].max())
        starts.append(min(max((n - c) // 2, lo), hi))
    y0, x0 = starts
    cut = torch.stack(
        [
            frames[k, y0 + int(whole[k, 0]) : y0 + int(whole[k, 0]) + ch][
                :, x0 + int(whole[k, 1]) : x0 + int(whole[k, 1]) + cw
            ].float()
            for k in range(t)
        ]
    )
    frac = old - whole  # (t, 2) what is left after the integer cut
    covers = ch >= 0.9 * h and cw >= 0.9 * w
    grid = None if motion.local_shifts_px is None else tuple(motion.local_shifts_px.shape[1:3])
    nodes = None
    local_crop = None
    if grid is not None and covers:
        gy, gx = grid
        ny = (torch.arange(gy, device=dev) + 0.5) * ch / gy - 0.5
        nx = (torch.arange(gx, device=dev) + 0.5) * cw / gx - 0.5
        yy, xx = torch.meshgrid(ny, nx, indexing="ij")
        nodes = torch.stack([yy.flatten(), xx.flatten()], -1)  # crop coordinates
        full = motion.shifts_at(nodes + torch.tensor([y0, x0], device=dev)).double()
        local_crop = (full - old[:, None, :]).reshape(t, gy, gx, 2)

    global_frac = frac.clone()
    local_total = None
    for _ in range(config.n_rounds):
        # global motion only: a patch's local offset is then relative to the mean position,
        # a constant the local model's free per-patch offset absorbs (and a periodic solve)
        crop_motion = MotionField(global_frac.float(), (ch, cw))
        references = torch.stack(
            [
                misr(
                    cut[offset::2],
                    crop_motion.select(list(range(offset, t, 2))),
                    exposure=None if exposure is None else exposure.subset(range(offset, t, 2)),
                    regularisation=config.regularisation,
                )
                for offset in (0, 1)
            ]
        )
        # X_odd = X_even moved by d: an even frame aligned to X_odd comes out d short
        window = _taper(2 * ch, device=dev)[:, None] * _taper(2 * cw, device=dev)[None, :]
        offset = estimate_shift(references[0] * window, references[1] * window, max_shift_px=4.0)
        parity = torch.zeros(t, 2, dtype=torch.float64, device=dev)
        parity[0::2] = offset.to(dev) / 2  # LR px
        filters = exposure_filter_ratios((2 * ch, 2 * cw), exposure, t, device=dev)
        raw = forward_model_shifts(
            cut,
            references,
            global_frac,
            exposure_filters=filters,
            n_steps=config.n_steps,
        )
        global_frac = smooth_trajectory(raw + parity + whole, config.smoothing_frames) - whole
        if nodes is not None:
            assert grid is not None and local_crop is not None
            local_total = _refine_patches(
                cut, references, global_frac, local_crop, grid, exposure, config, parity
            )
            if local_total is not None:
                local_crop = local_total
    new_global = global_frac + whole
    new_global = new_global - new_global[:1]
    change = new_global - old
    rms_global = float(change.pow(2).sum(-1).mean().sqrt())
    rms_local = None
    new_local = motion.local_shifts_px
    if local_total is not None and motion.local_shifts_px is not None:
        new_local = local_total.to(torch.float32)
        rms_local = float((new_local - motion.local_shifts_px).pow(2).sum(-1).mean().sqrt())
    biggest = float(change.norm(dim=-1).max())
    if biggest > config.max_change_px:
        log.warning(
            "motion refinement moved a frame by %.2f px (bound %.2f px): estimate kept",
            biggest,
            config.max_change_px,
        )
        return motion, RefineInfo(rms_global, rms_local, (ch, cw), False, False)
    refined = MotionField(new_global.to(torch.float32), motion.image_shape, new_local)
    info = RefineInfo(rms_global, rms_local, (ch, cw), True, local_total is not None)
    return refined, info


def _refine_patches(
    cut: torch.Tensor,
    references: torch.Tensor,
    global_frac: torch.Tensor,
    local_crop: torch.Tensor,
    grid: tuple[int, int],
    exposure: Exposure | None,
    config: RefineConfig,
    parity: torch.Tensor,
) -> torch.Tensor | None:
    """Refined local shifts ``(t, gh, gw, 2)`` on the crop's grid, or ``None`` (model rejected)."""
    t, ch, cw = cut.shape
    gh, gw = grid
    ph, pw, ys, xs = patch_geometry((ch, cw), grid, config.patch_overlap)
    if min(ph, pw) < 32:
        return None
    frames = torch.stack([cut[:, y : y + ph, x : x + pw] for y in ys for x in xs])
    refs = torch.stack(
        [references[:, 2 * y : 2 * (y + ph), 2 * x : 2 * (x + pw)] for y in ys for x in xs]
    )
    start = global_frac[None] + local_crop.permute(1, 2, 0, 3).reshape(gh * gw, t, 2)
    filters = exposure_filter_ratios((2 * ph, 2 * pw), exposure, t, device=cut.device)
    raw = forward_model_shifts(
        frames, refs, start, exposure_filters=filters, n_steps=config.n_steps
    )
    residual = (raw + parity - global_frac[None]).reshape(gh, gw, t, 2)
    fit = fit_local_model(residual)
    if not fit.accepted:
        return None
    return fit.shifts_px.permute(2, 0, 1, 3)
