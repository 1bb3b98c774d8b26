"""The per-frequency machinery of the alias score (pure tensors); the principle is in :mod:`.score`.

:func:`measure_frames` does everything that depends on the frames alone (once per movie and set of
folds: the forward model, the in-band directions, the noise, the aliased signal of the held-out
frames, the Wiener bound measured on the even/odd half sets and the interpolation baseline's
prediction of each fold); :func:`prediction_sums` adds one method's fit images (its predictions of
the held-out frames). Sums are per LR shell, rows :data:`ROWS` (``Pi Y``: the frames in the 3 alias
directions, where ``Pi P`` lies; ``Pi B``: the interpolation baseline's prediction).
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
from cryozssr.motion.warp import tiled_shift

N_SHELLS = 24
#: Fewest held-out frames a fold can have: 4 alias unknowns per frequency, and noise.
MIN_HELD_OUT = 5
_ROW_CHUNK = 32
_TAPER_LR_PX = 16
_GUARD_BINS = 4
_SMOOTH_BINS = 5  # window over which the fit frames' signal and noise are averaged
#: Tile (HR px) of the local motion's warp of a prediction (:func:`cryozssr.motion.warp.tiled_shift`).
LOCAL_TILE_HR_PX = 64
ROWS = (
    "C", "|Pi P|^2", "|Pi Y|^2", "3 sigma^2", "sigma^2 |Pi P|^2",
    "W = sum w S_held", "var W", "S_held (own noise, 5x5 mean)", "var S_held",
    "C_b", "|Pi B|^2", "sigma^2 |Pi B|^2", "Re <Pi P, Pi B>", "sigma^2 Re <Pi P, Pi B>",
)  # fmt: skip
N_ROWS = len(ROWS)


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

    def __call__(
        self, i: int, shift: torch.Tensor, rows: slice = slice(None), *, dose: bool = True
    ) -> torch.Tensor:
        """``A`` of frame ``idx[i]`` moved by ``shift`` (LR px), rows ``rows``: ``(r, w, 2, 2)``;
        without ``dose``, the aperture and the shift alone (the exposure filter applied apart)."""
        py = torch.exp(-4j * math.pi * self.fy[rows] * shift[0])  # (r, 2)
        px = torch.exp(-4j * math.pi * self.fx * shift[1])  # (w, 2)
        a = self.base[rows] * py[:, None, :, None] * px[None, :, None, :]
        a = a if self.ratio is None or not dose else a * self.ratio[i, rows]
        return a.to(self.dtype)


@dataclass
class _Fold:
    held: list[int]
    fit: list[int]
    u: torch.Tensor  # (n_held, hc, wc) complex64: the in-band direction per frequency
    sigma2: torch.Tensor  # (hc, wc): the held-out frames' noise power per frame
    base: torch.Tensor | None = None  # (n_held, hc, wc) complex64: the baseline's Pi P


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
    sums: torch.Tensor  # (N_ROWS, N_SHELLS) float64, the method-independent rows filled
    exposure: Exposure | None
    n_fit: float = 0.0  # mean number of fit frames per fold
    #: ``(t, ny, nx, 2)`` local motion (HR px, beyond the global shift) at the tile centres of
    #: the ``(2h, 2w)`` grid (:func:`cryozssr.motion.warp.tile_centres`, ``LOCAL_TILE_HR_PX``)
    local_hr_px: torch.Tensor | None = None


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


def alias_basis(
    model: _Model, shifts_px: torch.Tensor, rows: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frequency of ``rows``, the frames' 4 alias directions: an orthonormal basis ``Q``
    ``(rows, w, n, 4)`` of their span, and the in-band one ``u`` ``(n, rows, w)`` (not
    normalised), for frames at sub-pixel ``shifts_px`` ``(n, 2)`` (LR px)."""
    a = torch.stack([model(i, shifts_px[i], rows) for i in range(len(shifts_px))])
    u = (a * model.low[rows]).sum((-2, -1))
    mat = a.reshape(len(shifts_px), *a.shape[1:3], 4).permute(1, 2, 0, 3)
    return torch.linalg.qr(mat)[0], u


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
        qmat, u = alias_basis(model, resid, sl)
        yy = side.spectra[idx, sl]
        uu = u.abs().pow(2).sum(0).clamp(min=1e-30)
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
    baselines: Iterable[torch.Tensor] | None = None,
    local_hr_px: torch.Tensor | None = None,
) -> FrameSide:
    """The frames' side of the score for folds holding out ``held_out`` (each fit: the rest).

    ``local_hr_px``: the movie's local motion beyond ``shifts_px`` (:attr:`FrameSide.local_hr_px`;
    :func:`cryozssr.evaluate.score.local_tile_shifts`): each held-out frame is predicted from
    the image moved by it; ``None``: global motion only.
    ``baselines``: per fold, the interpolation baseline's ``(2h, 2w)`` image made from the fold's
    fit frames (:func:`cryozssr.evaluate.score.interpolation_baselines`); ``None``: no
    "beyond interpolation" rows (they stay 0).
    """
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
        torch.zeros(N_ROWS, N_SHELLS, dtype=torch.float64, device=dev), exposure,
    )  # fmt: skip
    if local_hr_px is not None:
        side.local_hr_px = local_hr_px.to(dev, torch.float64)
    side.spectra = torch.stack([_cut(side, i, frames[i].double()) for i in range(t)]).to(
        torch.complex64
    )
    keep = use.expand(hc, wc)
    sh = shell.expand(hc, wc)[keep]

    def add(row: int, v: torch.Tensor) -> None:
        side.sums[row].index_add_(0, sh, v[keep])

    base_iter = None if baselines is None else iter(baselines)
    for held in held_out:
        held = sorted(int(i) for i in held)
        fit = [i for i in range(t) if i not in set(held)]
        u, alias, sigma2 = _measure(side, held, fit)
        # rho's aliased signal power of the held-out frames is debiased by their own noise: its
        # noise then cancels in the ratio of their prediction to it (rows 2, 3)
        add(2, alias)
        add(3, 3 * sigma2)
        add(8, _signal_variance(sigma2, len(held)))
        # the bound: the Wiener share w of the fit frames (measured on them) weighting the
        # held-out frames' aliased signal, debiased by the held-out frames' own noise averaged
        # over the same 5x5 window (25x its n - 4 dimensions; any other frames' noise shares
        # the fit frames' and biases sum w S_held: +5 SD on a noise-only movie)
        _, fit_alias, fit_sigma2 = _measure(side, fit, None)
        wiener = _wiener_share(fit_alias - 3 * fit_sigma2, fit_sigma2, use)
        sigma2_local = _local_mean(sigma2, use)
        signal = alias - 3 * sigma2_local
        add(5, wiener * signal)
        add(6, wiener**2 * _signal_variance(sigma2_local, len(held), _SMOOTH_BINS**2))
        add(7, signal)
        fold = _Fold(held, fit, u, sigma2)
        if base_iter is not None:
            image = next(base_iter, None)
            if image is None:
                raise ValueError(f"{len(held_out)} folds need {len(held_out)} baseline images")
            fold.base = b = _projected_prediction(side, fold, image)
            y = side.spectra[held]
            add(9, (b.conj() * y).real.sum(0).double())
            bb = b.abs().pow(2).sum(0).double()
            add(10, bb)
            add(11, sigma2 * bb)
            del y
        side.folds.append(fold)
    side.n_fit = sum(len(f.fit) for f in side.folds) / len(side.folds)
    return side


def _signal_variance(sigma2: torch.Tensor, n: int, n_freq: int = 1) -> torch.Tensor:
    """Variance of the debiased aliased power ``|Pi Y|^2 - 3 sigma^2`` (``sigma^2`` measured on
    ``n`` frames, averaged over ``n_freq`` frequencies): 3 dimensions of noise (``3 sigma^4``) and
    the noise estimate's own (``9 sigma^4 / ((n - 4) n_freq)``); doubled: ``k`` and ``-k`` are
    the same (conjugate) data."""
    return 2 * (3 + 9 / ((n - 4) * n_freq)) * sigma2**2


def _local_mean(v: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """``v`` averaged over the used frequencies of a ``_SMOOTH_BINS`` square window."""
    mask = use.to(v.dtype).expand_as(v)
    return _box(v * mask, _SMOOTH_BINS) / _box(mask, _SMOOTH_BINS).clamp(min=1e-12)


def _projected_prediction(side: FrameSide, fold: _Fold, image: torch.Tensor) -> torch.Tensor:
    """``Pi P``: the held-out frames predicted from ``image``'s detail past the Nyquist alone,
    with the in-band direction projected out, ``(n_held, hc, wc)`` complex64."""
    h, w = side.shape
    if tuple(image.shape) != (2 * h, 2 * w):
        raise ValueError(f"fit images must be {(2 * h, 2 * w)}, got {tuple(image.shape)}")
    dev = side.spectra.device
    # predicted frames from the past-Nyquist detail alone, on the whole (periodic) grid:
    # exact, so an image with nothing past the Nyquist predicts exactly nothing
    x = torch.fft.fft2(image.to(dev, torch.float64)).reshape(2, h, 2, w).permute(1, 3, 0, 2)
    model = _Model(h, w, fold.held, fold.fit, side.exposure, dev)
    x_high = x * ~model.low
    p = torch.stack([
        _cut(side, j, torch.fft.ifft2(_frame_spectrum(side, model, x_high, i, j)).real)
        for i, j in enumerate(fold.held)
    ]).to(torch.complex64)  # fmt: skip
    del x, x_high, model
    hc = side.crop[0]
    for r0 in range(0, hc, _ROW_CHUNK):
        sl = slice(r0, r0 + _ROW_CHUNK)
        u, pr = fold.u[:, sl], p[:, sl]
        uu = u.abs().pow(2).sum(0).clamp(min=1e-30)
        p[:, sl] = pr - u * ((u.conj() * pr).sum(0) / uu)
    return p


def _frame_spectrum(side: FrameSide, model: _Model, x_high, i: int, j: int) -> torch.Tensor:
    """LR spectrum ``(h, w)`` of held-out frame ``j`` (the model's frame ``i``) predicted from the
    past-Nyquist HR components ``x_high`` ``(h, w, 2, 2)``: exposure filter, local motion (a
    tiled warp of the filtered image, then cut past the Nyquist again), the global shift and the
    aperture."""
    if side.local_hr_px is None:
        return (model(i, side.shifts_px[j]) * x_high).sum((-2, -1))
    h, w = x_high.shape[:2]
    x = x_high if model.ratio is None else x_high * model.ratio[i]
    image = torch.fft.ifft2(x.permute(2, 0, 3, 1).reshape(2 * h, 2 * w)).real
    # in single precision, as the prediction is kept (half the time of a float64 warp)
    image = tiled_shift(image.float(), side.local_hr_px[j].float(), tile_px=LOCAL_TILE_HR_PX)
    x = torch.fft.fft2(image.double()).reshape(2, h, 2, w).permute(1, 3, 0, 2) * ~model.low
    return (model(i, side.shifts_px[j], dose=False) * x).sum((-2, -1))


def prediction_sums(side: FrameSide, fits: Iterable[torch.Tensor]) -> torch.Tensor:
    """The method's rows (``C``, ``|Pi P|^2``, ``sigma^2 |Pi P|^2`` and, where the side has a
    baseline, its overlap with the baseline's prediction) added to the frames' sums.

    ``fits``: per fold, the 2x image made from the fold's fit frames, at the frame-0 position.
    """
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
        p = _projected_prediction(side, fold, image)
        rows = torch.zeros(5, hc, wc, dtype=torch.float64, device=dev)
        for r0 in range(0, hc, _ROW_CHUNK):
            sl = slice(r0, r0 + _ROW_CHUNK)
            p_perp = p[:, sl]
            # <Pi P, Pi Y> = <Pi P, Y>: Pi P is already orthogonal to u
            rows[0, sl] = (p_perp.conj() * side.spectra[fold.held, sl]).real.sum(0).double()
            rows[1, sl] = p_perp.abs().pow(2).sum(0).double()
            if fold.base is not None:
                rows[3, sl] = (p_perp.conj() * fold.base[:, sl]).real.sum(0).double()
        rows[2] = fold.sigma2 * rows[1]
        rows[4] = fold.sigma2 * rows[3]
        for row, v in zip((0, 1, 4, 12, 13), rows, strict=True):
            sums[row].index_add_(0, sh, v[keep])
    if next(fits, None) is not None:
        raise ValueError(f"{len(side.folds)} folds need {len(side.folds)} fit images, got more")
    return sums
