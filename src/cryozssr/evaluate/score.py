r"""A no-truth score of detail past the LR Nyquist: predict held-out frames' aliasing (pure tensors).

The method is run on the even frames and on the odd frames apart (``--half-sets``). The 2x image
``X`` made from one half is pushed through the forward model of every frame of the *other* half
(its measured sub-pixel shift, its exposure filter, the 2x2 pixel aperture; the model of
:mod:`cryozssr.baselines.misr`):

.. math::

   Y_t(k) = \sum_{ab} A_{t,ab}(k) X(K_{ab}) + N_t(k),

with ``K_ab`` the 4 HR frequencies that fold onto the LR frequency ``k``; ``ab = 00`` is the one
inside the LR band (the square ``|K_y|, |K_x| <`` LR Nyquist), the other three lie past the
Nyquist. Only those three enter the prediction ``P_t = sum_{ab != 00} A_{t,ab} X(K_ab)``.

At every ``k`` the held-out frames form a vector over ``t``. Everything along the in-band
direction ``u_t = A_{t,00}`` is projected out (``Pi``), in the frames and in the prediction, so
the in-band content and any error of the method there (blur, attenuation) cannot count: what is
left of the frames is the aliased signal, which changes with each frame's sub-pixel shift, plus
their own noise. The noise is independent of ``X`` (other frames), so

* ``C = Re <Pi P, Pi Y>`` (summed over held-out frames and frequencies) is an unbiased estimate of
  how much of the frames' aliased signal ``X``'s past-Nyquist detail predicts;
* the noise power ``sigma^2`` per shell is measured in the part of the frames orthogonal to all 4
  alias directions (``t - 4`` dimensions: pure noise in the model), so the aliased signal power
  the frames hold is ``S = |Pi Y|^2 - (t - 1) sigma^2`` per frequency;
* the score is the noise-debiased correlation ``rho = C / sqrt(|Pi P|^2 S)``: 1 when ``X``'s
  detail past the Nyquist is the specimen's (up to a gain), 0 when it is unrelated to it.
  ``rho^2`` is the share of the frames' aliased signal power it explains ("what the frames
  allow" in the held-out frames); ``z = C / sqrt(sigma^2 |Pi P|^2)`` is its significance
  (``z ~ N(0, 1)`` for a method that recovers nothing).

The truth itself scores ``rho ~ 1``, but no estimator made from one half's frames can: their own
noise limits it. The bound is the Wiener limit. At each frequency the source half's frames hold
aliased signal power ``S_src`` against noise ``3 sigma_src^2`` in the 3-dimensional subspace the
aliases span, so the best linear estimate (Gaussian prior: independent frequencies, no knowledge of
the specimen) explains at most ``w = S_src / (S_src + 3 sigma_src^2)`` of the aliased signal; pooled
over the band, ``rho_max^2 = sum w S_held / sum S_held``. ``S_src`` and ``sigma_src^2`` are measured
on the source half (where it is held out in the other fold: independent of the held-out frames, so
``sum w S_held`` is unbiased), smoothed over a small window of frequencies (CTF rings vary the
signal within a shell; pooling a whole shell would understate the bound). ``rho^2 / rho_max^2`` is
"what the frames allow" in the report: 100% for a Wiener-optimal estimate, more only with prior
knowledge of the specimen (a network's, or the truth's).

An interpolated image's past-Nyquist content is a fixed mirror of its in-band content: it cannot
follow the frame-to-frame changes of the aliasing, and scores ~0. Both folds (even -> odd, odd ->
even) are pooled. Frequencies are binned by the LR radius ``|k|``: LR ``|k|`` in ``[1/3, 1/2]``
cycles/LR px receives the aliases at 1-1.33x the LR Nyquist, ``[1/6, 1/3]`` those at 1.33-1.67x
(along the axes), as :data:`cryozssr.evaluate.frc.FRC_BANDS` does on the HR grid.

The prediction is made on the whole (periodic) grid, exactly, then every held-out frame and its
prediction are cut at the integer part of the frame's shift (as misr's tiles are) and given the
same soft edge, so the periodic model holds up to the sub-pixel remainder; frequencies next to the
LR Nyquist (a few bins) and on the axes are skipped. Global motion only (a local field is ignored).
Known limit: in-band content that fades from frame to frame otherwise than the exposure filter says
(radiation damage on the simulated sets) lands mostly outside the alias directions and inflates
``sigma^2``: there the measured aliased signal ``S`` is biased low (negative), so ``rho`` and the
bound are not given, while ``z`` (a ratio to ``sigma``) is only made conservative.
Cost: about one misr run of the same movie (``bench/bench_score.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cryozssr.baselines._common import exposure_filters, rms_exposure_filter
from cryozssr.dose import Exposure
from cryozssr.evaluate.frc import edge_taper, tapered
from cryozssr.fourier import alias_frequencies, box_response

#: LR-radius bands (cycles/LR px) named after the HR bands their aliases fall in (on the axes).
SCORE_BANDS: dict[str, tuple[float, float]] = {
    "nyquist_1.33x": (1.0 / 3.0, 0.5),
    "1.33x_1.67x": (1.0 / 6.0, 1.0 / 3.0),
}
#: The pooled band of the headline score: LR ``|k|`` from 1/6 to 1/2 (aliases at Nyquist-1.67x).
HEADLINE_BAND: tuple[float, float] = (1.0 / 6.0, 0.5)
#: ``z`` above which a method is said to recover detail (one-sided, ~3e-5 false alarms).
Z_RECOVERED = 4.0
#: Smallest share of the frames' aliased signal called a recovery (below it: "nothing useful").
FRACTION_RECOVERED = 0.01
#: Significance of the Wiener bound's signal below which "what the frames allow" is not given.
Z_BOUND = 3.0
#: Aliased signal power over noise power below which the frames are said to hold nothing to check.
MIN_ALIASED_SNR = 1e-3
_N_SHELLS = 24
_ROW_CHUNK = 32
_TAPER_LR_PX = 16
_GUARD_BINS = 4
_SMOOTH_BINS = 5  # window over which the source half's signal and noise are averaged


def is_recovered(z: float, explained_share: float | None, *, measurable: bool) -> bool:
    """The verdict's rule: ``z >= Z_RECOVERED`` and, if measurable, ``rho^2 >= FRACTION_RECOVERED``."""
    if z < Z_RECOVERED:
        return False
    return not measurable or (explained_share or 0.0) >= FRACTION_RECOVERED


@dataclass(frozen=True)
class AliasScore:
    """The pooled score and its parts; ``shells`` are LR radii (cycles/LR px) with ``rho`` per shell."""

    rho: float | None
    z: float
    explained_share: float | None
    explained_share_bound: float | None
    fraction_of_bound: float | None
    bound_z: float
    aliased_signal_snr: float
    n_held_out_frames: int
    bands: dict[str, float | None] = field(default_factory=dict)
    shells_k_lr: list[float] = field(default_factory=list)
    shells_rho: list[float | None] = field(default_factory=list)

    @property
    def fraction_of_bound_se(self) -> float | None:
        """Standard error of :attr:`fraction_of_bound`: ``C`` (``1 / z``, squared) and ``W``."""
        if self.fraction_of_bound is None or self.z == 0:
            return None
        return abs(self.fraction_of_bound) * math.sqrt(1 / self.bound_z**2 + 4 / self.z**2)

    @property
    def recovered(self) -> bool:
        """Significant (``z`` >= 4) and, where measurable, ``rho^2`` at least 1%."""
        return is_recovered(self.z, self.explained_share, measurable=self.rho is not None)

    def verdict(self) -> str:
        """One plain sentence for the report."""
        head = f"recovered detail past the Nyquist: {'yes' if self.recovered else 'no'}"
        if self.fraction_of_bound is not None:
            pct = 100 * max(self.fraction_of_bound, 0.0)
            se = 100 * (self.fraction_of_bound_se or 0.0)
            return f"{head}, {pct:.0f}% (± {se:.0f}%) of what the frames allow"
        if self.rho is not None:
            return f"{head} (rho = {self.rho:.2f}; what the frames allow is not measurable)"
        why = "the frames' aliased signal is too weak to measure against their noise"
        return f"{head} (z = {self.z:.1f}); {why}"

    def to_dict(self) -> dict:
        return {
            "rho": self.rho,
            "z": self.z,
            "explained_share": self.explained_share,
            "explained_share_bound": self.explained_share_bound,
            "fraction_of_bound": self.fraction_of_bound,
            "fraction_of_bound_se": self.fraction_of_bound_se,
            "bound_z": self.bound_z,
            "aliased_signal_snr": self.aliased_signal_snr,
            "n_held_out_frames": self.n_held_out_frames,
            "recovered": self.recovered,
            "verdict": self.verdict(),
            "bands": self.bands,
            "shells_k_lr": self.shells_k_lr,
            "shells_rho": self.shells_rho,
        }


def alias_score(
    frames: torch.Tensor,
    shifts_px: torch.Tensor,
    halves: tuple[torch.Tensor, torch.Tensor],
    *,
    exposure: Exposure | None = None,
) -> AliasScore:
    """Score 2x images ``halves = (from even frames, from odd frames)`` on ``(t, h, w)`` LR ``frames``.

    ``shifts_px`` ``(t, 2)``: the specimen position in frame ``t`` relative to frame 0 (LR px, as
    :class:`~cryozssr.motion.field.MotionField`); both halves are at the frame-0 position, in counts
    per HR pixel per frame. Needs at least 10 frames (5 held out per fold: 4 alias unknowns + noise).
    """
    t, h, w = frames.shape
    if t < 10:
        raise ValueError(f"the alias score needs at least 10 frames, got {t}")
    for half in halves:
        if tuple(half.shape) != (2 * h, 2 * w):
            raise ValueError(f"half-set images must be {(2 * h, 2 * w)}, got {tuple(half.shape)}")
    folds = [
        _fold(frames, shifts_px, halves[src], src=src, held=1 - src, exposure=exposure)
        for src in (0, 1)
    ]
    sums = torch.zeros(7, _N_SHELLS, dtype=torch.float64, device=frames.device)
    for f, (fold_sums, signal, sigma2, shell, use) in enumerate(folds):
        # the source half of fold f is the held-out half of the other fold: its measurements
        # there give the Wiener share an estimate from it can at best explain, per frequency
        _, src_signal, src_sigma2, _, _ = folds[1 - f]
        w = _wiener_share(src_signal, src_sigma2, use)
        sums[:5] += fold_sums
        sums[5].index_add_(0, shell[use], (w * signal)[use])
        # its variance: |Pi Y|^2 over n - 1 dimensions of noise varies by (n - 1) sigma^4
        n1 = float(fold_sums[3].sum() / sigma2[use].sum().clamp(min=1e-300))
        sums[6].index_add_(0, shell[use], (w**2 * n1 * sigma2**2)[use])
    return _summarise(sums, n_held=t // 2)


def _wiener_share(signal: torch.Tensor, sigma2: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """``S / (S + 3 sigma^2)`` per frequency, ``S`` and ``sigma^2`` averaged over a small window.

    ``signal`` ``(h, w)``: aliased signal power summed over one half's frames (noise-debiased, so
    it can be negative); ``sigma2``: the per-frame noise power; 3 = the aliases' subspace.
    """
    k = _SMOOTH_BINS

    def smooth(v: torch.Tensor) -> torch.Tensor:
        v = torch.nn.functional.pad(v[None, None], (k // 2,) * 4, mode="circular")
        return torch.nn.functional.avg_pool2d(v, k, stride=1)[0, 0]

    mask = use.to(signal.dtype)
    n = smooth(mask).clamp(min=1e-12)
    s = (smooth(signal * mask) / n).clamp(min=0)
    noise = 3 * smooth(sigma2 * mask) / n
    return torch.where(s > 0, s / (s + noise).clamp(min=1e-300), torch.zeros_like(s))


def _crop(t_shifts: torch.Tensor, h: int, w: int) -> tuple[int, int, int, torch.Tensor]:
    """Margin, even crop sizes and integer offsets ``(t, 2)`` cutting every frame at its shift."""
    r = t_shifts.round().long()
    m = int(r.abs().max()) + 1 if r.numel() else 1
    hc, wc = h - 2 * m, w - 2 * m
    hc -= hc % 2
    wc -= wc % 2
    if min(hc, wc) < 4 * _TAPER_LR_PX:
        raise ValueError(
            f"the drift ({m} px) leaves less than {4 * _TAPER_LR_PX} px of the {h}x{w} frames"
        )
    return m, hc, wc, r


class _Model:
    """The forward model of held-out frames ``idx`` on an ``(h, w)`` LR grid: ``A_{t,ab}(k)``."""

    def __init__(self, h, w, idx, src, t, exposure, device, dtype=torch.complex128):
        self.dtype = dtype
        self.fy = alias_frequencies(h, 2, device=device)
        self.fx = alias_frequencies(w, 2, device=device)
        fy, fx = self.fy, self.fx
        self.base = (
            box_response(fy, 2)[:, None, :, None] * box_response(fx, 2)[None, :, None, :] / 4
        )
        self.low = (fy.abs() < 0.25)[:, None, :, None] & (fx.abs() < 0.25)[None, :, None, :]
        self.ratio = None  # exposure filter of the held-out frame over the source half's
        if exposure is not None and exposure.dose_per_frame_e_per_a2 is not None:
            rad_hr = torch.sqrt(fy[:, None, :, None] ** 2 + fx[None, :, None, :] ** 2)
            pix = exposure.pixel_size_angstrom / 2
            held = slice(idx[0], t, 2)
            q = exposure_filters(rad_hr, t, exposure, pixel_size_angstrom=pix, frames=held)
            qbar = rms_exposure_filter(
                rad_hr, len(range(src, t, 2)), exposure.every_other(src), pixel_size_angstrom=pix
            )
            assert q is not None and qbar is not None
            self.ratio = q / qbar.clamp(min=1e-6)  # (n, h, w, 2, 2)

    def __call__(self, i: int, shift: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """``A`` of held-out frame ``i`` moved by ``shift`` (LR px), rows ``rows``: ``(r, w, 2, 2)``."""
        py = torch.exp(-4j * math.pi * self.fy[rows] * shift[0])  # (r, 2)
        px = torch.exp(-4j * math.pi * self.fx * shift[1])  # (w, 2)
        a = self.base[rows] * py[:, None, :, None] * px[None, :, None, :]
        a = a if self.ratio is None else a * self.ratio[i, rows]
        return a.to(self.dtype)


def _fold(
    frames: torch.Tensor,
    shifts_px: torch.Tensor,
    image: torch.Tensor,
    *,
    src: int,
    held: int,
    exposure: Exposure | None,
) -> tuple[torch.Tensor, ...]:
    """One fold: ``(5, shells)`` sums (``C``, ``|Pi P|^2``, ``|Pi Y|^2``, its expected noise power
    ``(n - 1) sigma^2``, the variance of ``C``: ``sigma^2 |Pi P|^2``) and, per frequency of the
    crop, the held-out frames' aliased signal ``|Pi Y|^2 - (n - 1) sigma^2``, ``sigma^2``, the
    shell index and the mask of frequencies used."""
    dev = frames.device
    t, h, w = frames.shape
    idx = list(range(held, t, 2))
    n = len(idx)
    s = shifts_px.to(dev, torch.float64)[idx]
    m, hc, wc, r = _crop(shifts_px.to(dev, torch.float64), h, w)
    r = r[idx]
    resid = s - r  # sub-pixel remainder, LR px

    # predicted frames from the past-Nyquist detail alone, on the whole (periodic) grid: exact,
    # so an image with nothing past the Nyquist predicts exactly nothing
    x = torch.fft.fft2(image.double()).reshape(2, h, 2, w).permute(1, 3, 0, 2)  # (h, w, a, b)
    full = _Model(h, w, idx, src, t, exposure, dev)
    x_high = x * ~full.low
    win = edge_taper((hc, wc), width_px=_TAPER_LR_PX, device=dev).double()

    def cut(i: int, img: torch.Tensor) -> torch.Tensor:
        """Frame ``i``'s view of the frame-0 region, tapered: ``fft2`` ``(hc, wc)``."""
        y0, x0 = m + int(r[i, 0]), m + int(r[i, 1])
        return torch.fft.fft2(tapered(img[y0 : y0 + hc, x0 : x0 + wc], win))

    p = torch.stack(
        [cut(i, torch.fft.ifft2((full(i, s[i]) * x_high).sum((-2, -1))).real) for i in range(n)]
    )
    del x, x_high, full
    y = torch.stack([cut(i, frames[j].double()) for i, j in enumerate(idx)])  # (n, hc, wc)

    # per-frequency algebra in single precision (sums accumulate in double): ~2x faster
    crop = _Model(hc, wc, idx, src, t, exposure, dev, torch.complex64)
    p, y = p.to(torch.complex64), y.to(torch.complex64)
    ky = torch.fft.fftfreq(hc, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(wc, device=dev, dtype=torch.float64)[None, :]
    rad_lr = torch.sqrt(ky**2 + kx**2)
    shell = (rad_lr / (0.5 * math.sqrt(2)) * _N_SHELLS).long().clamp(max=_N_SHELLS - 1)
    # skipped: a guard next to the LR Nyquist (the taper spreads content a few bins across it)
    # and the axes (what is left of the crop's edges)
    use = (ky.abs() * hc < hc / 2 - _GUARD_BINS) & (kx.abs() * wc < wc / 2 - _GUARD_BINS)
    use = use & (ky.abs() * hc > 1.5) & (kx.abs() * wc > 1.5)

    out = torch.zeros(5, _N_SHELLS, dtype=torch.float64, device=dev)
    signal_map = torch.zeros(hc, wc, dtype=torch.float64, device=dev)
    sigma2_map = torch.zeros(hc, wc, dtype=torch.float64, device=dev)
    for r0 in range(0, hc, _ROW_CHUNK):
        sl = slice(r0, r0 + _ROW_CHUNK)
        a = torch.stack([crop(i, resid[i], sl) for i in range(n)])  # (n, rows, wc, 2, 2)
        u = (a * crop.low[sl]).sum((-2, -1))  # (n, rows, wc): the in-band direction
        pp_, yy = p[:, sl], y[:, sl]
        uu = u.abs().pow(2).sum(0).clamp(min=1e-300)
        p_perp = pp_ - u * ((u.conj() * pp_).sum(0) / uu)
        y_perp = yy - u * ((u.conj() * yy).sum(0) / uu)
        mat = a.reshape(n, *a.shape[1:3], 4).permute(1, 2, 0, 3)  # (rows, wc, n, 4)
        qmat, _ = torch.linalg.qr(mat)
        yv = yy.permute(1, 2, 0)[..., None]  # (rows, wc, n, 1)
        noise = (yv - qmat @ (qmat.conj().transpose(-2, -1) @ yv)).abs().pow(2).sum((-2, -1))
        keep = use[sl].expand(yy.shape[1:])
        sh = shell[sl].expand(yy.shape[1:])[keep]
        sigma2 = noise / (n - 4)  # per-frame noise power at this k
        pp = p_perp.abs().pow(2).sum(0)
        terms = (
            (p_perp.conj() * y_perp).real.sum(0),
            pp,
            y_perp.abs().pow(2).sum(0),
            (n - 1) * sigma2,
            sigma2 * pp,
        )
        for i, v in enumerate(terms):
            out[i].index_add_(0, sh, v[keep].double())
        signal_map[sl] = (terms[2] - terms[3]).double()
        sigma2_map[sl] = sigma2.double()
    use_map = use.expand(hc, wc)
    return out, signal_map, sigma2_map, shell.expand(hc, wc), use_map


def _bound(sums: torch.Tensor) -> tuple[float | None, float | None, float]:
    """From pooled ``(7,)`` sums: ``rho_max^2`` (``None`` where the frames' aliased signal is not
    measurable), the fraction of it a method reaches, ``rho^2 / rho_max^2 = C |C| / (|Pi P|^2 W)``
    with ``W = sum w S_held`` (``None`` unless ``W`` is significant), and ``W``'s significance."""
    c, pp, yp, noise = (float(v) for v in sums[:4])
    explained, var = float(sums[5]), float(sums[6])
    bound_z = explained / math.sqrt(var) if var > 0 else 0.0
    signal = yp - noise
    if bound_z < Z_BOUND:
        return None, None, bound_z
    measurable = signal > 0 and noise > 0 and signal / noise >= MIN_ALIASED_SNR
    fraction = c * abs(c) / (pp * explained) if pp > 0 else None
    return (explained / signal if measurable else None), fraction, bound_z


def _rho(sums: torch.Tensor) -> tuple[float | None, float, float]:
    """``(rho, z, aliased SNR)`` from pooled sums; ``rho`` is ``None`` without signal."""
    c, pp, yp, noise, var_c = (float(v) for v in sums[:5])
    z = c / math.sqrt(var_c) if var_c > 0 else 0.0
    signal = yp - noise
    snr = signal / noise if noise > 0 else 0.0
    if pp <= 0 or signal <= 0 or snr < MIN_ALIASED_SNR:
        return None, z, snr
    return c / math.sqrt(pp * signal), z, snr


def _summarise(sums: torch.Tensor, *, n_held: int) -> AliasScore:
    edges = torch.arange(_N_SHELLS + 1, dtype=torch.float64) * (0.5 * math.sqrt(2) / _N_SHELLS)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()

    def pooled(lo: float, hi: float) -> torch.Tensor:
        sel = [i for i, k in enumerate(centres) if lo <= k < hi]
        return sums[:, sel].sum(1)

    headline = pooled(*HEADLINE_BAND)
    rho, z, snr = _rho(headline)
    bound, fraction, bound_z = _bound(headline)
    bands = {name: _rho(pooled(lo, hi))[0] for name, (lo, hi) in SCORE_BANDS.items()}
    return AliasScore(
        rho=rho,
        z=z,
        explained_share=None if rho is None else math.copysign(rho * rho, rho),
        explained_share_bound=bound,
        fraction_of_bound=fraction,
        bound_z=bound_z,
        aliased_signal_snr=snr,
        n_held_out_frames=n_held,
        bands=bands,
        shells_k_lr=[round(k, 4) for k in centres],
        shells_rho=[_rho(sums[:, i])[0] for i in range(_N_SHELLS)],
    )


def score_record(
    frames: torch.Tensor,
    shifts_px: torch.Tensor,
    halves: tuple[torch.Tensor, torch.Tensor],
    *,
    exposure: Exposure | None = None,
) -> dict:
    """:func:`alias_score` as a run record's JSON entry; a movie it cannot score gets ``error``."""
    try:
        return alias_score(frames, shifts_px, halves, exposure=exposure).to_dict()
    except (ValueError, RuntimeError) as exc:  # an optional figure must not fail the movie
        return {"error": str(exc), "verdict": f"not scored: {exc}"}
