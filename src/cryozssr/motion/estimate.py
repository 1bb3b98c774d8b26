"""Estimate specimen motion on a low-resolution movie: a global trajectory plus optional local motion.

Global: every frame is aligned iteratively against the aligned sum of all *other* frames (Unblur,
Grant & Grigorieff 2015; MotionCor2, Zheng et al. 2017), which avoids the bias of correlating a
frame's noise with itself. The cross-power spectrum is low-pass weighted by a B-factor, the spectra
are Fourier-cropped to the band that carries signal (speed), the peak is found to ~0.01 px by
evaluating the correlation exactly (DFT) on fine grids, and the trajectory is regularised after
every iteration by a local quadratic fit over a few frames.

Local: the globally aligned frames are cut into overlapping, edge-tapered patches centred on the
nodes of a ``(gh, gw)`` grid; each patch stack is aligned in the same way (all patches batched, no
smoothing), and one model of space and time is fitted to all the patches' residual trajectories at
once (:mod:`cryozssr.motion._local`: a few smooth temporal components shared by every patch, learnt
from the movie, each patch with its own amplitudes, every patch weighted by its measured noise,
outlier patches replaced by the smooth part over the grid; the number of components chosen by
even/odd cross-validation). The model is kept only if its held-out gain over global motion beats
what the same fit finds on the frames in random order, and it stays within ``max_local_shift_px``
of the global trajectory; otherwise the movie keeps its global motion: local motion can refine,
never run away, and a movie without local motion gets global motion back.

Pure tensor code. Shifts follow :mod:`cryozssr.motion.field`: ``shifts[t]`` is the position of the
specimen in frame ``t`` relative to frame 0, in (y, x) pixels of the movie.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from cryozssr.errors import InputError, OptionError
from cryozssr.fourier import crop_rfft, cropped_frequencies, cropped_rfft, phase_ramp
from cryozssr.motion import _align
from cryozssr.motion._local import fit_local_model
from cryozssr.motion.field import MotionField

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MotionConfig:
    """Options of :func:`estimate_motion`. Frequencies in cycles per (LR) pixel, B-factors in px^2.

    Attributes
    ----------
    bfactor_px2:
        Low-pass ``exp(-B k^2 / 4)`` applied to the cross-power spectrum (global alignment);
        100 px^2 is 900 A^2 at 3 A/px (MotionCor2's 500 A^2 at 1 A/px is 500 px^2).
    max_frequency:
        Spectra are Fourier-cropped to ``|k| < max_frequency`` before alignment (speed; little
        signal survives the B-factor above it).
    max_shift_px:
        Largest move between consecutive frames that the first pass follows (frame ``t`` is
        searched near frame ``t - 1``, so the total drift is unbounded), and the largest
        correction per iteration afterwards, in pixels.
    n_iterations, tolerance_px:
        At most ``n_iterations`` rounds; stop when no frame moved by more than ``tolerance_px``.
    smoothing_frames:
        Window of the local quadratic (Savitzky-Golay) fit regularising the trajectory after every
        iteration (``0`` = none). Exact for trajectories quadratic over the window; it biases
        trajectories with frame-to-frame jitter, so lower it for stage-drift-like motion.
    patches:
        ``(gh, gw)`` grid of local-motion patches, ``"auto"`` (:func:`auto_patch_grid`: 5 x 5
        where patches of at least ``AUTO_MIN_PATCH_PX`` fit, fewer on small frames), or ``None``
        for global motion only. Local motion is kept only where the data show it (module
        docstring), so ``"auto"`` leaves a movie without local motion with its global motion.
    patch_bfactor_px2, patch_overlap:
        Low-pass for patches; patch size as a multiple of the node spacing.
    patch_iterations:
        Alignment rounds of the patches (started from the global trajectory, so no search for
        large moves). Their noisy per-frame trajectories are regularised by the local model, not
        iterated to ``tolerance_px``: after 3 rounds they move by < 0.001 px (512 px frames).
    local_time_degree, local_space_degree:
        Degree in time of the local model's shared temporal components (polynomials without a
        constant), and degree in space (over the patch grid) of the smooth part that outlier
        patches are compared with and replaced by.
    max_local_shift_px:
        Sanity bound: local motion beyond this (relative to the global trajectory, anywhere on the
        grid, any frame) is rejected and the movie keeps its global motion (with a warning).
    """

    bfactor_px2: float = 100.0
    max_frequency: float = 0.25
    max_shift_px: float = 40.0
    n_iterations: int = 8
    tolerance_px: float = 0.002
    smoothing_frames: int = 7
    patches: tuple[int, int] | str | None = None
    patch_bfactor_px2: float = 100.0
    patch_overlap: float = 2.0
    patch_iterations: int = 3
    local_time_degree: int = 4
    local_space_degree: int = 2
    max_local_shift_px: float = 5.0

    def __post_init__(self) -> None:
        if self.bfactor_px2 < 0 or self.patch_bfactor_px2 < 0:
            raise OptionError("motion B-factors must be >= 0")
        if not 0.0 < self.max_frequency <= 0.5:
            raise OptionError(
                f"max_frequency must be in (0, 0.5] cycles/px, got {self.max_frequency}"
            )
        if self.n_iterations < 1 or self.patch_iterations < 1 or self.max_shift_px <= 0:
            raise OptionError("n_iterations, patch_iterations must be >= 1 and max_shift_px > 0")
        if isinstance(self.patches, str):
            if self.patches != "auto":
                raise OptionError(f"patches must be 'auto', a grid or None, got {self.patches!r}")
        elif self.patches is not None and (len(self.patches) != 2 or min(self.patches) < 1):
            raise OptionError(f"patches must be two integers >= 1, got {self.patches}")
        if self.patch_overlap < 1.0 or self.local_time_degree < 1 or self.local_space_degree < 0:
            raise OptionError(
                "patch_overlap must be >= 1, local_time_degree >= 1 and local_space_degree >= 0"
            )
        if not self.max_local_shift_px > 0:
            raise OptionError(f"max_local_shift_px must be > 0, got {self.max_local_shift_px}")


def estimate_motion(frames: torch.Tensor, *, config: MotionConfig = MotionConfig()) -> MotionField:
    """Estimate the motion of a ``(t, h, w)`` movie (counts, LR pixels); see the module docstring.

    Returns a :class:`MotionField` on the device of ``frames`` with ``global_shifts_px[0] == 0``
    and, when ``config.patches`` is set, ``local_shifts_px`` of shape ``(t, gh, gw, 2)``.
    """
    check_movie(frames)
    t, h, w = frames.shape
    spec = _frame_spectra(frames, config)  # any real dtype
    global_px = _align_spectra(spec, (h, w), config, bfactor_px2=config.bfactor_px2)
    global_px = (global_px - global_px[:1]).to(torch.float32)
    local = None
    grid = auto_patch_grid((h, w)) if config.patches == "auto" else config.patches
    if grid is not None:  # the patches are cut from the same spectra: no frame transformed again
        config = dataclasses.replace(config, patches=grid)
        patches = _patch_spectra(spec, (h, w), global_px, config)
        del spec  # the frames' spectra are not needed to align the patches
        local = _estimate_local(patches, config)
        local = None if local is None else local.to(torch.float32)
    log.debug(
        "global motion: %d frames, total path %.2f px",
        t,
        float(global_px.diff(dim=0).norm(dim=-1).sum()),
    )
    return MotionField(global_px, (h, w), local)


AUTO_GRID = 5
"""``patches="auto"``: MotionCor2's usual 5 x 5 grid ..."""
AUTO_MIN_PATCH_PX = 128
"""... with fewer patches where they would be smaller than this (with the default overlap of 2,
a patch spans two node spacings); on 256 px frames (104 px patches) local motion of 1-3 A was
mostly not detectable."""


PATCH_CROP_PX = 256
"""Patches are aligned on at most this many Fourier samples per axis (the lowest frequencies):
the cost and memory of local motion stay bounded on large detectors (a 5 x 5 grid on a
5760 x 4092 px K3 frame has 2304 x 1636 px patches; 256 samples keep periods down to 18 px).
On 512 px frames (206 px patches, cropped to 104 by ``max_frequency``) nothing changes."""


def auto_patch_grid(shape: tuple[int, int], *, overlap: float = 2.0) -> tuple[int, int] | None:
    """The patch grid of ``patches="auto"`` for ``(h, w)`` frames, or ``None`` (too small).

    Per axis ``min(AUTO_GRID, floor(overlap * n / AUTO_MIN_PATCH_PX))``; ``None`` below 2 x 2.
    """
    grid = tuple(min(AUTO_GRID, int(overlap * n // AUTO_MIN_PATCH_PX)) for n in shape)
    return None if min(grid) < 2 else (grid[0], grid[1])


def check_movie(frames: torch.Tensor) -> None:
    """Raise :class:`InputError` unless ``frames`` is a ``(t >= 2, h, w)`` stack."""
    if frames.ndim != 3:
        raise InputError(
            f"a movie must be a (frames, height, width) stack, got shape {tuple(frames.shape)}"
        )
    if frames.shape[0] < 2:
        raise InputError(f"motion needs at least 2 frames, the movie has {frames.shape[0]}")
    if min(frames.shape[-2:]) < 16:
        raise InputError(f"frames of {tuple(frames.shape[-2:])} px are too small to align")


def _estimate_stack(
    stacks: torch.Tensor,
    config: MotionConfig,
    *,
    bfactor_px2: float,
    initial_px: torch.Tensor | None = None,
    max_shift_px: float | None = None,
) -> torch.Tensor:
    """Trajectory ``(..., t, 2)`` (free gauge) of ``(..., t, h, w)`` stacks aligned to their own sums."""
    return _align_spectra(
        _frame_spectra(stacks, config),
        tuple(stacks.shape[-2:]),
        config,
        bfactor_px2=bfactor_px2,
        initial_px=initial_px,
        max_shift_px=max_shift_px,
    )


def _frame_spectra(stacks: torch.Tensor, config: MotionConfig) -> torch.Tensor:
    """The ``(..., t, h, w)`` stacks' spectra Fourier-cropped to ``config.max_frequency``,
    ``(..., t, hc, wc // 2 + 1)`` complex64, one frame at a time (memory: the spectra plus one
    frame)."""
    h, w = stacks.shape[-2:]
    crop = (_align.crop_size(h, config.max_frequency), _align.crop_size(w, config.max_frequency))
    t = stacks.shape[-3]
    spec = torch.empty(
        *stacks.shape[:-3],
        t,
        crop[0],
        crop[1] // 2 + 1,
        dtype=torch.complex64,
        device=stacks.device,
    )
    for i in range(t):
        spec[..., i, :, :] = cropped_rfft(stacks[..., i, :, :].float(), crop)
    return spec


def _align_spectra(
    spec: torch.Tensor,
    shape: tuple[int, int],
    config: MotionConfig,
    *,
    bfactor_px2: float,
    initial_px: torch.Tensor | None = None,
    max_shift_px: float | None = None,
) -> torch.Tensor:
    """:func:`_estimate_stack` on the stacks' cropped spectra ``(..., t, hc, wc // 2 + 1)``."""
    h, w = shape
    crop = (spec.shape[-2], 2 * (spec.shape[-1] - 1))
    t = spec.shape[-3]
    spec[..., 0, 0] = 0  # the frames' means removed
    ky, kx = cropped_frequencies((h, w), crop, device=spec.device)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    filt = torch.exp(-bfactor_px2 * k2 / 4).to(torch.float32)
    filt[0, 0] = 0.0
    limit = min(max_shift_px or config.max_shift_px, h / 2 - 1, w / 2 - 1)
    if initial_px is None:  # large drifts: each frame found from the previous frames' aligned sum
        init = _align.progressive_trajectory(
            spec, ky, kx, shape=(h, w), filt=filt, max_step_px=limit
        )
    else:
        init = initial_px.to(torch.float64).expand(*spec.shape[:-3], t, 2).clone()
    return _align.align_stack(
        spec,
        ky,
        kx,
        shape=(h, w),
        filt=filt,
        smoothing_frames=config.smoothing_frames,
        initial_px=init,
        max_shift_px=limit,
        n_iterations=config.n_iterations,
        tolerance_px=config.tolerance_px,
    )


def patch_geometry(
    shape: tuple[int, int], grid: tuple[int, int], overlap: float
) -> tuple[int, int, list[int], list[int]]:
    """Patch size ``(ph, pw)`` and the top-left corners (rows, columns) of the patches of ``grid``.

    Patch ``(i, j)`` is centred on node ``(i, j)`` of :class:`MotionField`'s grid, moved inwards
    where it would leave the image.
    """
    out = []
    for n, g in zip(shape, grid, strict=True):
        size = min(n, 2 * math.ceil(overlap * n / g / 2))
        starts = [
            min(max(round((i + 0.5) * n / g - 0.5 - size / 2 + 0.5), 0), n - size) for i in range(g)
        ]
        out.append((size, starts))
    (ph, ys), (pw, xs) = out
    return ph, pw, ys, xs


def _taper(n: int, *, device) -> torch.Tensor:
    """1-D window: flat in the middle, raised-cosine edges over ``n // 8`` samples."""
    edge = max(n // 8, 1)
    win = torch.ones(n, device=device)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(edge, device=device) + 0.5) / edge)
    win[:edge] = ramp
    win[n - edge :] = ramp.flip(0)
    return win


class PatchSpectra(NamedTuple):
    """The patches' cropped spectra ``(gh, gw, t, hc, wc // 2 + 1)`` and their geometry."""

    spectra: torch.Tensor
    binned_px: tuple[int, int]  # a patch's size in binned px
    bin_px: tuple[float, float]  # original px per binned px (y, x)
    patch_px: tuple[int, int]  # a patch's size in original px


def _patch_spectra(
    spec: torch.Tensor, shape: tuple[int, int], global_px: torch.Tensor, config: MotionConfig
) -> PatchSpectra:
    """The globally aligned patches of the grid ``config.patches``, cut from the frames' cropped
    spectra of the global stage (:func:`_frame_spectra`).

    Every frame is aligned by its global shift on its spectrum and brought back to real space at
    the spectrum's size (a Fourier-binned frame, which holds every frequency the patches are
    aligned on: their lowest ``PATCH_CROP_PX`` Fourier samples, at most ``max_frequency``), and
    the patches are cut from that: no frame is transformed again, and the patches' transforms are
    of binned patches (a K3 frame's 5 x 5 patches: 6x binned, of 257 x 361 px; on frames of 512 px
    the band is ``max_frequency``, 2x binned).
    """
    assert config.patches is not None
    t = spec.shape[-3]
    h, w = shape
    gh, gw = config.patches
    ph, pw, ys, xs = patch_geometry((h, w), (gh, gw), config.patch_overlap)
    if min(ph, pw) < 16:
        raise OptionError(f"a {gh}x{gw} patch grid on {h}x{w} px frames gives patches under 16 px")
    # the band the patches are aligned on (their lowest Fourier samples), cycles per original px:
    # the binned frame needs no more (a K3 frame's 5 x 5 patches: 0.078, a 6x binned frame)
    kept = [min(_align.crop_size(n, config.max_frequency), PATCH_CROP_PX) for n in (ph, pw)]
    band = max(kept[0] / (2 * ph), kept[1] / (2 * pw))
    hc = min(_align.crop_size(h, band), spec.shape[-2])
    wc = min(_align.crop_size(w, band), 2 * (spec.shape[-1] - 1))
    bin_y, bin_x = h / hc, w / wc  # original px per binned px (1 without a crop)
    phb, pwb = min(round(ph / bin_y), hc), min(round(pw / bin_x), wc)
    ysb = [min(round(y / bin_y), hc - phb) for y in ys]
    xsb = [min(round(x / bin_x), wc - pwb) for x in xs]
    crop = tuple(min(n, nb - nb % 2) for n, nb in zip(kept, (phb, pwb), strict=True))
    window = _taper(phb, device=spec.device)[:, None] * _taper(pwb, device=spec.device)[None, :]
    ky, kx = cropped_frequencies((h, w), (hc, wc), device=spec.device)
    patches = torch.empty(
        gh, gw, t, crop[0], crop[1] // 2 + 1, dtype=torch.complex64, device=spec.device
    )
    for k in range(t):  # one aligned frame at a time: memory is the patches' cropped spectra
        moved = crop_rfft(spec[..., k, :, :], (hc, wc)) * phase_ramp(ky, kx, -global_px[k])
        aligned = torch.fft.irfft2(moved, s=(hc, wc))
        for i, y0 in enumerate(ysb):  # a patch at a time: no stack of all of a frame's patches
            for j, x0 in enumerate(xsb):
                cut = aligned[y0 : y0 + phb, x0 : x0 + pwb]
                patches[i, j, k] = cropped_rfft((cut - cut.mean()) * window, crop)
    return PatchSpectra(patches, (phb, pwb), (bin_y, bin_x), (ph, pw))


def _estimate_local(patches: PatchSpectra, config: MotionConfig) -> torch.Tensor | None:
    """Local shifts ``(t, gh, gw, 2)`` on the grid ``config.patches``, relative to the global
    motion the ``patches`` were aligned by, or ``None`` when the local model is rejected (module
    docstring)."""
    (phb, pwb), (bin_y, bin_x), (ph, pw) = patches.binned_px, patches.bin_px, patches.patch_px
    t, dev = patches.spectra.shape[2], patches.spectra.device
    binned = _align_spectra(  # in binned px
        patches.spectra,
        (phb, pwb),
        dataclasses.replace(  # the space-time model regularises
            config, smoothing_frames=0, n_iterations=config.patch_iterations
        ),
        bfactor_px2=config.patch_bfactor_px2 / (bin_y * bin_x),
        initial_px=torch.zeros(t, 2, device=dev),  # already globally aligned
        max_shift_px=min(min(ph, pw) / 4, 2 * config.max_local_shift_px) / max(bin_y, bin_x),
    )  # (gh, gw, t, 2)
    raw = binned * torch.tensor([bin_y, bin_x], dtype=binned.dtype, device=binned.device)
    fit = fit_local_model(
        raw, time_degree=config.local_time_degree, space_degree=config.local_space_degree
    )
    biggest = float(fit.shifts_px.abs().max()) if fit.accepted else 0.0
    if fit.accepted and biggest > config.max_local_shift_px:
        log.warning(
            "local motion of %.1f px exceeds the %.1f px bound: keeping the global motion",
            biggest,
            config.max_local_shift_px,
        )
        return None
    if not fit.accepted:
        log.info(
            "local motion not above noise (held-out gain %.1f, permuted frames %.1f): "
            "global motion kept",
            fit.gain,
            fit.null_gain,
        )
        return None
    log.info(
        "local motion kept: %d shared component(s), held-out gain %.1f (shuffled frames at most"
        " %.1f), largest %.2f px from the global trajectory",
        fit.rank,
        fit.gain,
        fit.null_gain,
        biggest,
    )
    return fit.shifts_px.permute(2, 0, 1, 3)  # (t, gh, gw, 2)
