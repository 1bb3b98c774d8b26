"""Batched iterative frame alignment against the sum of the other frames (Unblur/MotionCor2 style).

Internal helpers of :mod:`cryozssr.motion.estimate`. Everything works on Fourier-cropped ``rfft2``
spectra ``(..., t, hc, wc // 2 + 1)`` whose frequencies are kept in cycles per *original* pixel, so
shifts stay in original pixels throughout. Leading dimensions batch independent stacks (patches).
"""

from __future__ import annotations

import itertools
import math

import torch

from cryozssr.fourier import phase_ramp

CHUNK_BYTES = 32 * 2**20
"""Frames' spectra processed at a time per alignment iteration (bounded temporaries)."""


def crop_size(n: int, max_frequency: float) -> int:
    """Even size of the Fourier-cropped axis keeping ``|k| < max_frequency`` (cycles/px) of ``n``."""
    if max_frequency >= 0.5:
        return n
    return max(8, min(n, 2 * math.ceil(max_frequency * n)))


def _correlation_at(
    product: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor
) -> torch.Tensor:
    """Real cross-correlation from a half spectrum ``(..., hc, wr)`` on a ``(..., n) x (..., m)`` grid."""
    weight = torch.full_like(kx, 2.0)
    weight[0] = 1.0
    if kx[-1] == 0.5:  # a true Nyquist column appears once
        weight[-1] = 1.0
    ey = torch.exp(2j * math.pi * ys[..., :, None] * ky)  # (..., n, hc)
    ex = torch.exp(2j * math.pi * xs[..., None, :] * kx[:, None]) * weight[:, None]  # (..., wr, m)
    # the large contraction (over rows) in complex64 (the spectra's dtype; ~1e-6 relative, 1e-4 px
    # on the peak), the small one in complex128
    rows = (ey.to(product.dtype) @ product).to(torch.complex128)  # (..., n, wr)
    return (rows @ ex).real


def find_peaks(
    product: torch.Tensor,
    ky: torch.Tensor,
    kx: torch.Tensor,
    *,
    shape: tuple[int, int],
    max_shift_px: float,
    step_px: float = 0.1,
    near_zero: bool = False,
) -> torch.Tensor:
    """Sub-pixel peak ``(..., 2)`` (original px) of the correlation whose half spectrum is ``product``.

    Integer peak on the cropped grid within ``max_shift_px``; then the correlation evaluated exactly
    (DFT) on a grid of a quarter of a cropped pixel around it, and again on a ``step_px`` grid
    around that maximum; each time a parabola through the 3x3 neighbourhood of the grid maximum.
    """
    h, w = shape
    hc, wc = product.shape[-2], 2 * (product.shape[-1] - 1)
    half = max(h / hc, w / wc, 1.0)
    if near_zero:  # the caller knows every peak is within half a cropped pixel of 0
        centre = torch.zeros(*product.shape[:-2], 2, dtype=torch.float64, device=product.device)
        return _refine(product, ky, kx, centre, half=half, step_px=step_px)
    xc = torch.fft.irfft2(product, s=(hc, wc))
    py = torch.fft.fftfreq(hc, d=1.0 / hc, device=xc.device) * (h / hc)
    px = torch.fft.fftfreq(wc, d=1.0 / wc, device=xc.device) * (w / wc)
    inside = (py.abs()[:, None] <= max_shift_px) & (px.abs()[None, :] <= max_shift_px)
    xc = torch.where(inside, xc, -torch.inf)
    idx = xc.flatten(-2).argmax(dim=-1)
    centre = torch.stack([py[idx // wc], px[idx % wc]], dim=-1).double()
    return _refine(product, ky, kx, centre, half=half, step_px=step_px)


def _refine(
    product: torch.Tensor,
    ky: torch.Tensor,
    kx: torch.Tensor,
    centre: torch.Tensor,
    *,
    half: float,
    step_px: float,
) -> torch.Tensor:
    """Exact correlation (DFT) on two successively finer grids around ``centre`` (..., 2)."""
    for step, span in ((half / 4, half), (step_px, 3 * step_px)):
        n = 2 * round(span / step) + 1
        offs = (torch.arange(n, device=product.device, dtype=torch.float64) - (n - 1) / 2) * step
        fine = _correlation_at(
            product, ky, kx, centre[..., 0, None] + offs, centre[..., 1, None] + offs
        )
        jy, jx, dy, dx = _grid_peak(fine)
        centre = centre + torch.stack([offs[jy] + dy * step, offs[jx] + dx * step], dim=-1)
    return centre


def _grid_peak(fine: torch.Tensor):
    """Indices of the maximum of ``(..., n, n)`` and its parabolic sub-step offsets (in steps)."""
    n = fine.shape[-1]
    flat = fine.flatten(-2)
    j = flat.argmax(dim=-1)
    jy = (j // n).clamp(1, n - 2)
    jx = (j % n).clamp(1, n - 2)

    def take(oy: int, ox: int) -> torch.Tensor:
        return flat.gather(-1, ((jy + oy) * n + jx + ox)[..., None])[..., 0]

    c0 = take(0, 0)
    return jy, jx, _parabola(take(-1, 0), c0, take(1, 0)), _parabola(take(0, -1), c0, take(0, 1))


def _parabola(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    denom = a - 2 * b + c
    off = 0.5 * (a - c) / torch.where(denom.abs() > 1e-30, denom, torch.full_like(denom, -1e-30))
    return off.clamp(-0.5, 0.5)


def smoothing_matrix(n: int, window: int, *, degree: int = 2, device=None) -> torch.Tensor:
    """``(n, n)`` matrix of a local polynomial (Savitzky-Golay) fit over ``window`` frames.

    Row ``t`` fits a degree-``degree`` polynomial to the frames within ``window // 2`` of ``t`` and
    evaluates it at ``t``. Near the ends the window shrinks symmetrically instead of sliding
    inwards, so the first frames (where beam-induced motion is fastest) are never extrapolated from
    later ones: a sqrt-like onset is followed, not flattened. Identity when ``window <= degree + 1``.
    """
    out = torch.eye(n, dtype=torch.float64, device=device)
    if window <= degree + 1:
        return out
    for t in range(n):
        half = min(window // 2, t, n - 1 - t)
        if 2 * half + 1 <= degree + 1:
            continue
        tau = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
        design = tau[:, None] ** torch.arange(degree + 1, dtype=torch.float64, device=device)
        out[t] = 0.0
        out[t, t - half : t + half + 1] = torch.linalg.pinv(design)[0]
    return out


def trajectory_breaks(raw: torch.Tensor, *, min_jump_px: float = 1.0) -> list[int]:
    """Frames ``t`` where a ``(t, 2)`` trajectory jumps between ``t - 1`` and ``t``.

    A step ``raw[t] - raw[t-1]`` that differs from the median of its neighbouring steps by more
    than ``max(min_jump_px, 6 x`` the steps' median absolute deviation``)`` is a jump (a stage
    settling, a fast first-frame move): smoothing must not average across it.
    """
    n = raw.shape[0]
    if n < 4:
        return []
    steps = raw.diff(dim=0)  # (n - 1, 2)
    local = torch.stack(
        [steps[max(0, i - 2) : i + 3].median(dim=0).values for i in range(n - 1)]
    )  # running median over 5 steps
    deviation = (steps - local).norm(dim=-1)
    spread = float(deviation.median())
    limit = max(min_jump_px, 6 * 1.4826 * spread)
    return [i + 1 for i in range(n - 1) if float(deviation[i]) > limit]


def smooth_trajectory(raw: torch.Tensor, window: int) -> torch.Tensor:
    """Savitzky-Golay smoothing of ``(..., t, 2)`` trajectories, never across a jump.

    Each stack is cut at :func:`trajectory_breaks` and every piece smoothed on its own (with the
    ends' symmetric shrinking window of :func:`smoothing_matrix`).
    """
    if window <= 3:
        return raw
    flat = raw.reshape(-1, *raw.shape[-2:])
    out = torch.empty_like(flat)
    for b, one in enumerate(flat):
        bounds = [0, *trajectory_breaks(one), one.shape[0]]
        for lo, hi in itertools.pairwise(bounds):
            out[b, lo:hi] = (
                smoothing_matrix(hi - lo, window, device=one.device).to(one) @ one[lo:hi]
            )
    return out.reshape(raw.shape)


def progressive_trajectory(
    spec: torch.Tensor,
    ky: torch.Tensor,
    kx: torch.Tensor,
    *,
    shape: tuple[int, int],
    filt: torch.Tensor,
    max_step_px: float,
) -> torch.Tensor:
    """A first trajectory ``(..., t, 2)`` for :func:`align_stack`, whatever the total drift.

    Frame ``t`` is aligned to the sum of frames ``0 .. t-1`` already aligned, searching within
    ``max_step_px`` of frame ``t-1``'s position: the total drift is unbounded (only the step
    between consecutive frames is), and the reference grows with every frame, so the estimate
    does not random-walk as chained frame pairs would. The iterative alignment refines it.
    """
    n = spec.shape[-3]
    shifts = torch.zeros(*spec.shape[:-3], n, 2, dtype=torch.float64, device=spec.device)
    reference = spec[..., 0, :, :].clone()
    for t in range(1, n):
        previous = shifts[..., t - 1, :]
        moved = spec[..., t, :, :] * phase_ramp(ky, kx, -previous)
        step = find_peaks(
            moved * reference.conj() * filt, ky, kx, shape=shape, max_shift_px=max_step_px
        )
        shifts[..., t, :] = previous + step
        reference = reference + spec[..., t, :, :] * phase_ramp(ky, kx, -shifts[..., t, :])
    return shifts


def align_stack(
    spec: torch.Tensor,
    ky: torch.Tensor,
    kx: torch.Tensor,
    *,
    shape: tuple[int, int],
    filt: torch.Tensor,
    smoothing_frames: int,
    initial_px: torch.Tensor,
    max_shift_px: float,
    n_iterations: int,
    tolerance_px: float,
) -> torch.Tensor:
    """Iteratively align each frame of ``spec (..., t, hc, wr)`` to the aligned sum of the others.

    ``shifts[..., t, :]`` is the position of frame ``t``'s content relative to the stack's common
    reference, so frame ``t`` is aligned by ``-shifts``; the gauge (a shift common to all frames)
    is left free. ``filt (hc, wr)`` weights the cross-power spectrum (low-pass); the trajectory is
    regularised after every iteration by :func:`smooth_trajectory` over ``smoothing_frames``.
    Returns float64 ``(..., t, 2)``.
    """
    shifts = initial_px.to(torch.float64)
    hc, wc = spec.shape[-2], 2 * (spec.shape[-1] - 1)
    quarter_cropped_px = max(shape[0] / hc, shape[1] / wc, 1.0) / 4
    largest = math.inf
    n = spec.shape[-3]
    per_frame = spec[..., :1, :, :].numel() * 8  # bytes of one frame's complex64 spectra
    chunk = max(1, min(n, CHUNK_BYTES // max(per_frame, 1)))
    chunks = [slice(c, min(c + chunk, n)) for c in range(0, n, chunk)]
    for _ in range(n_iterations):
        total = sum(
            (spec[..., c, :, :] * phase_ramp(ky, kx, -shifts[..., c, :])).sum(-3, keepdim=True)
            for c in chunks
        )
        reference = total.conj() * filt  # the sum's conjugate, filtered once
        parts = []
        for c in chunks:  # frames a chunk at a time: memory is the spectra plus one chunk
            aligned = spec[..., c, :, :] * phase_ramp(ky, kx, -shifts[..., c, :])
            # aligned * conj(sum - aligned) * filt; |aligned|^2 = |spec|^2 (unit-modulus ramps)
            product = aligned * reference - spec[..., c, :, :].abs().square() * filt
            parts.append(
                find_peaks(
                    product,
                    ky,
                    kx,
                    shape=shape,
                    max_shift_px=max_shift_px,
                    near_zero=largest
                    < quarter_cropped_px,  # no integer search once steps are small
                )
            )
        residual = torch.cat(parts, dim=-2)
        new = smooth_trajectory(shifts + residual, smoothing_frames)
        change = new - shifts
        largest = float(change.abs().max())
        # converged when the frames stop moving relative to each other: a shift common to all
        # frames (the free gauge) drifts from one iteration to the next and moves none of them
        done = float((change - change.mean(dim=-2, keepdim=True)).abs().max()) < tolerance_px
        shifts = new
        if done:
            break
    return shifts
