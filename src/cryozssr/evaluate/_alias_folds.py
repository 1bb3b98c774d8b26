"""The per-frequency machinery of the alias score (pure tensors); the principle is in :mod:`.score`.

:func:`measure_frames` does everything that depends on the frames alone (once per movie and set of
folds: the forward model, the in-band directions, the noise, the aliased signal of the held-out
frames and the Wiener share of each fold's fit frames); :func:`prediction_sums` adds one method's
fit images (its predictions of the held-out frames). Sums are per LR shell, rows
``C, |Pi P|^2, |Pi Y|^2, 3 sigma^2, sigma^2 |Pi P|^2, W = sum w S_held, var W`` (``Pi Y``: the
frames in the 3 alias directions, where ``Pi P`` lies).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from cryozssr.baselines._common import exposure_filters, rms_exposure_filter
from cryozssr.dose import Exposure
from cryozssr.evaluate.frc import edge_taper, tapered
from cryozssr.fourier import alias_frequencies, box_response

N_SHELLS = 24
#: Fewest held-out frames a fold can have: 4 alias unknowns per frequency, and noise.
MIN_HELD_OUT = 5
_ROW_CHUNK = 32
_TAPER_LR_PX = 16
_GUARD_BINS = 4
_SMOOTH_BINS = 5  # window over which the fit frames' signal and noise are averaged


class _Model:
    """The forward model of frames ``idx`` on an ``(h, w)`` LR grid: ``A_{t,ab}(k)``.

    With ``fit``, each frame's exposure filter is divided by the fit frames' RMS filter (the
    signal filter of an image made from them); without, the scale is irrelevant (measurements).
    """

    def __init__(self, h, w, idx, fit, exposure, device, dtype=torch.complex128):
        self.dtype = dtype
        self.fy = alias_frequencies(h, 2, device=device)
        self.fx = alias_frequencies(w, 2, device=device)
        fy, fx = self.fy, self.fx
        self.base = (
            box_response(fy, 2)[:, None, :, None] * box_response(fx, 2)[None, :, None, :] / 4
        )
        self.low = (fy.abs() < 0.25)[:, None, :, None] & (fx.abs() < 0.25)[None, :, None, :]
        self.ratio = None
        if exposure is not None and exposure.dose_per_frame_e_per_a2 is not None:
            rad_hr = torch.sqrt(fy[:, None, :, None] ** 2 + fx[None, :, None, :] ** 2)
            pix = exposure.pixel_size_angstrom / 2
            sub = exposure.subset(idx)
            q = exposure_filters(rad_hr, len(idx), sub, pixel_size_angstrom=pix)
            assert q is not None
            if fit is not None:
                qbar = rms_exposure_filter(
                    rad_hr, len(fit), exposure.subset(fit), pixel_size_angstrom=pix
                )
                assert qbar is not None
                q = q / qbar.clamp(min=1e-6)
            self.ratio = q  # (n, h, w, 2, 2)

    def __call__(self, i: int, shift: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """``A`` of frame ``idx[i]`` moved by ``shift`` (LR px), rows ``rows``: ``(r, w, 2, 2)``."""
        py = torch.exp(-4j * math.pi * self.fy[rows] * shift[0])  # (r, 2)
        px = torch.exp(-4j * math.pi * self.fx * shift[1])  # (w, 2)
        a = self.base[rows] * py[:, None, :, None] * px[None, :, None, :]
        a = a if self.ratio is None else a * self.ratio[i, rows]
        return a.to(self.dtype)


@dataclass
class _Fold:
    held: list[int]
    fit: list[int]
    u: torch.Tensor  # (n_held, hc, wc) complex64: the in-band direction per frequency
    sigma2: torch.Tensor  # (hc, wc): the held-out frames' noise power per frame


@dataclass
class FrameSide:
    """What the score needs of the frames, independent of the method (:func:`measure_frames`)."""

    shape: tuple[int, int]
    shifts_px: torch.Tensor  # (t, 2) float64
    margin: int
    crop: tuple[int, int]
    offsets: torch.Tensor  # (t, 2) integer part of the shifts
    window: torch.Tensor
    spectra: torch.Tensor  # (t, hc, wc) complex64: every frame cut at its shift, tapered
    shell: torch.Tensor  # (hc, wc) LR shell index
    use: torch.Tensor  # (hc, wc) frequencies used
    folds: list[_Fold]
    sums: torch.Tensor  # (7, N_SHELLS) float64, the method-independent rows filled
    exposure: Exposure | None


def _crop(shifts: torch.Tensor, h: int, w: int) -> tuple[int, int, int, torch.Tensor]:
    """Margin, even crop sizes and integer offsets ``(t, 2)`` cutting every frame at its shift."""
    r = shifts.round().long()
    m = int(r.abs().max()) + 1 if r.numel() else 1
    hc, wc = h - 2 * m, w - 2 * m
    hc -= hc % 2
    wc -= wc % 2
    if min(hc, wc) < 4 * _TAPER_LR_PX:
        raise ValueError(
            f"the drift ({m} px) leaves less than {4 * _TAPER_LR_PX} px of the {h}x{w} frames"
        )
    return m, hc, wc, r


def _cut(side: FrameSide, i: int, img: torch.Tensor) -> torch.Tensor:
    """Frame ``i``'s view of the frame-0 region, tapered: ``fft2`` ``(hc, wc)``."""
    m, (hc, wc) = side.margin, side.crop
    y0, x0 = m + int(side.offsets[i, 0]), m + int(side.offsets[i, 1])
    return torch.fft.fft2(tapered(img[y0 : y0 + hc, x0 : x0 + wc], side.window))


def _measure(side: FrameSide, idx: list[int], fit: list[int] | None):
    """On frames ``idx``, per frequency: the in-band direction ``u`` (only with ``fit``), the power
    of the frames in the 3 alias directions (the span of all 4 with ``u`` projected out: where the
    aliased signal lives) and the per-frame noise power ``sigma^2`` (the ``n - 4`` dimensions
    orthogonal to all 4 alias directions: noise alone in the model)."""
    hc, wc = side.crop
    n = len(idx)
    dev = side.spectra.device
    model = _Model(hc, wc, idx, fit, side.exposure, dev, torch.complex64)
    resid = side.shifts_px[idx] - side.offsets[idx]  # sub-pixel remainder, LR px
    u_all = None if fit is None else torch.zeros(n, hc, wc, dtype=torch.complex64, device=dev)
    alias = torch.zeros(hc, wc, dtype=torch.float64, device=dev)
    sigma2 = torch.zeros(hc, wc, dtype=torch.float64, device=dev)
    for r0 in range(0, hc, _ROW_CHUNK):
        sl = slice(r0, r0 + _ROW_CHUNK)
        a = torch.stack([model(i, resid[i], sl) for i in range(n)])  # (n, rows, wc, 2, 2)
        u = (a * model.low[sl]).sum((-2, -1))
        yy = side.spectra[idx, sl]
        uu = u.abs().pow(2).sum(0).clamp(min=1e-30)
        mat = a.reshape(n, *a.shape[1:3], 4).permute(1, 2, 0, 3)  # (rows, wc, n, 4)
        qmat, _ = torch.linalg.qr(mat)
        yv = yy.permute(1, 2, 0)[..., None]
        in_span = (qmat.conj().transpose(-2, -1) @ yv).abs().pow(2).sum((-2, -1))
        noise = yy.abs().pow(2).sum(0) - in_span
        alias[sl] = (in_span - (u.conj() * yy).sum(0).abs().pow(2) / uu).double()
        sigma2[sl] = (noise / (n - 4)).double()
        if u_all is not None:
            u_all[:, sl] = u
    return u_all, alias, sigma2


def _box(v: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of ``v`` over a ``k x k`` window (periodic)."""
    v = torch.nn.functional.pad(v[None, None], (k // 2,) * 4, mode="circular")
    return torch.nn.functional.avg_pool2d(v, k, stride=1)[0, 0] * k * k


def _wiener_share(signal: torch.Tensor, sigma2: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """``S / (S + 3 sigma^2)`` per frequency, ``S`` and ``sigma^2`` averaged over a small window.

    ``signal`` ``(h, w)``: aliased signal power summed over the fit frames (noise-debiased, so it
    can be negative); ``sigma2``: the per-frame noise power; 3 = the aliases' subspace.
    """
    mask = use.to(signal.dtype)
    n = _box(mask, _SMOOTH_BINS).clamp(min=1e-12)
    s = (_box(signal * mask, _SMOOTH_BINS) / n).clamp(min=0)
    noise = 3 * _box(sigma2 * mask, _SMOOTH_BINS) / n
    return torch.where(s > 0, s / (s + noise).clamp(min=1e-300), torch.zeros_like(s))


def measure_frames(
    frames: torch.Tensor,
    shifts_px: torch.Tensor,
    *,
    held_out: Sequence[Sequence[int]],
    exposure: Exposure | None = None,
) -> FrameSide:
    """The frames' side of the score for folds holding out ``held_out`` (each fit: the rest)."""
    dev = frames.device
    t, h, w = frames.shape
    shifts = shifts_px.to(dev, torch.float64)
    m, hc, wc, r = _crop(shifts, h, w)
    ky = torch.fft.fftfreq(hc, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(wc, device=dev, dtype=torch.float64)[None, :]
    rad_lr = torch.sqrt(ky**2 + kx**2)
    shell = (rad_lr / (0.5 * math.sqrt(2)) * N_SHELLS).long().clamp(max=N_SHELLS - 1)
    # skipped: a guard next to the LR Nyquist (the taper spreads content a few bins across it)
    # and the axes (what is left of the crop's edges)
    use = (ky.abs() * hc < hc / 2 - _GUARD_BINS) & (kx.abs() * wc < wc / 2 - _GUARD_BINS)
    use = use & (ky.abs() * hc > 1.5) & (kx.abs() * wc > 1.5)
    window = edge_taper((hc, wc), width_px=_TAPER_LR_PX, device=dev).double()
    side = FrameSide(
        (h, w), shifts, m, (hc, wc), r, window,
        torch.empty(0), shell, use, [],
        torch.zeros(7, N_SHELLS, dtype=torch.float64, device=dev), exposure,
    )  # fmt: skip
    side.spectra = torch.stack([_cut(side, i, frames[i].double()) for i in range(t)]).to(
        torch.complex64
    )
    keep = use.expand(hc, wc)
    sh = shell.expand(hc, wc)[keep]
    for held in held_out:
        held = sorted(int(i) for i in held)
        fit = [i for i in range(t) if i not in set(held)]
        u, alias, sigma2 = _measure(side, held, fit)
        n = len(held)
        # the held-out frames' aliased signal power, debiased by their own noise (n - 4
        # dimensions): another set's noise differs by more than the aliased signal's share
        # (0.5% against ~2% on the real-texture movie), its own is consistent
        signal = alias - 3 * sigma2
        # the most an estimate from the fit frames can explain of it: measured on the fit frames
        # (independent of the held-out ones, so sum w S_held is unbiased)
        _, fit_alias, fit_sigma2 = _measure(side, fit, None)
        wiener = _wiener_share(fit_alias - 3 * fit_sigma2, fit_sigma2, use)
        # variance of S_held: 3 dimensions of noise (3 sigma^4) and the noise estimate's own
        # (9 sigma^4 / (n - 4)); doubled: k and -k are the same (conjugate) data
        var_signal = 2 * (3 + 9 / (n - 4)) * sigma2**2
        for row, v in (
            (2, alias),
            (3, 3 * sigma2),
            (5, wiener * signal),
            (6, wiener**2 * var_signal),
        ):
            side.sums[row].index_add_(0, sh, v[keep])
        side.folds.append(_Fold(held, fit, u, sigma2))
    return side


def prediction_sums(side: FrameSide, fits: Iterable[torch.Tensor]) -> torch.Tensor:
    """The method's rows (``C``, ``|Pi P|^2``, ``sigma^2 |Pi P|^2``) added to the frames' sums.

    ``fits``: per fold, the 2x image made from the fold's fit frames, at the frame-0 position.
    """
    h, w = side.shape
    fits = iter(fits)
    dev = side.spectra.device
    sums = side.sums.clone()
    hc, wc = side.crop
    keep = side.use.expand(hc, wc)
    sh = side.shell.expand(hc, wc)[keep]
    for f, fold in enumerate(side.folds):
        image = next(fits, None)
        if image is None:
            raise ValueError(f"{len(side.folds)} folds need {len(side.folds)} fit images, got {f}")
        if tuple(image.shape) != (2 * h, 2 * w):
            raise ValueError(f"fit images must be {(2 * h, 2 * w)}, got {tuple(image.shape)}")
        # predicted frames from the past-Nyquist detail alone, on the whole (periodic) grid:
        # exact, so an image with nothing past the Nyquist predicts exactly nothing
        x = torch.fft.fft2(image.to(dev, torch.float64)).reshape(2, h, 2, w).permute(1, 3, 0, 2)
        model = _Model(h, w, fold.held, fold.fit, side.exposure, dev)
        x_high = x * ~model.low
        p = torch.stack([
            _cut(side, j, torch.fft.ifft2((model(i, side.shifts_px[j]) * x_high).sum((-2, -1))).real)
            for i, j in enumerate(fold.held)
        ]).to(torch.complex64)  # fmt: skip
        del x, x_high, model
        c = torch.zeros(hc, wc, dtype=torch.float64, device=dev)
        pp = torch.zeros_like(c)
        for r0 in range(0, hc, _ROW_CHUNK):
            sl = slice(r0, r0 + _ROW_CHUNK)
            u, pr = fold.u[:, sl], p[:, sl]
            uu = u.abs().pow(2).sum(0).clamp(min=1e-30)
            p_perp = pr - u * ((u.conj() * pr).sum(0) / uu)
            # <Pi P, Pi Y> = <Pi P, Y>: Pi P is already orthogonal to u
            c[sl] = (p_perp.conj() * side.spectra[fold.held, sl]).real.sum(0).double()
            pp[sl] = p_perp.abs().pow(2).sum(0).double()
        for row, v in ((0, c), (1, pp), (4, fold.sigma2 * pp)):
            sums[row].index_add_(0, sh, v[keep])
    if next(fits, None) is not None:
        raise ValueError(f"{len(side.folds)} folds need {len(side.folds)} fit images, got more")
    return sums
