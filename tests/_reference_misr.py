"""The alias solve of ``misr`` and the explicit regime as they were before issue 14 (tests only).

A frozen copy (per-frame (h, w, 4, 4) outer products, three solves from scratch for the explicit
regime) that the fast implementation is compared against. Not part of the package.
"""

from __future__ import annotations

import math

import torch

from cryozssr.dose import Exposure, critical_exposure, frame_doses

UNIT_TRANSFER_FLOOR = 1e-2


def alias_frequencies(n_lr: int, factor: int, *, device=None) -> torch.Tensor:
    """Signed HR frequencies (cycles/HR px) of the aliases ``K_a = k + a n``: ``(n_lr, factor)``."""
    n_hr = n_lr * factor
    idx = torch.arange(n_lr, device=device)[:, None] + n_lr * torch.arange(factor, device=device)
    return torch.fft.fftfreq(n_hr, device=device, dtype=torch.float64)[idx]


def box_response(freq_hr: torch.Tensor, factor: int) -> torch.Tensor:
    """Transfer of the ``factor``-pixel sum at HR frequencies ``freq_hr`` (cycles/HR px), complex128."""
    d = torch.arange(factor, device=freq_hr.device, dtype=torch.float64)
    return torch.exp(2j * math.pi * freq_hr[..., None] * d).sum(-1)


def zero_padding_weights(n_lr: int, factor: int, *, device=None) -> torch.Tensor:
    """``(n_lr, factor)`` complex weights taking an LR coefficient to its aliases (one axis).

    ``1 * phase`` on the minimal alias, ``1/2 * phase`` on both ``+-n/2`` for the LR Nyquist
    coefficient, 0 elsewhere; phase ``exp(-i pi (f-1) K)`` with ``K`` in cycles/HR px.
    """
    freq = alias_frequencies(n_lr, factor, device=device)
    k_lr = torch.fft.fftfreq(n_lr, device=device, dtype=torch.float64)[:, None] / factor
    minimal = torch.isclose(freq, k_lr, atol=1e-12).double()
    if n_lr % 2 == 0:
        nyq = torch.isclose(freq.abs(), torch.tensor(0.5 / factor, dtype=torch.float64), atol=1e-12)
        minimal[n_lr // 2] = 0.5 * nyq[n_lr // 2].double()
    return minimal * torch.exp(-1j * math.pi * (factor - 1) * freq)


def assemble_hr_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``(..., h, w, f, f)`` alias values -> full HR spectrum ``(..., f h, f w)``.

    ``x[..., ky, kx, a, b]`` is the HR coefficient at index ``(ky + a h, kx + b w)``.
    """
    *lead, h, w, f, _ = x.shape
    n = len(lead)
    z = x.permute(*range(n), n + 2, n, n + 3, n + 1)  # (..., f_a, h, f_b, w)
    return z.reshape(*lead, f * h, f * w)


def exposure_filters(
    radius_cycles_per_px: torch.Tensor,
    n_frames: int,
    exposure: Exposure | None,
    *,
    pixel_size_angstrom: float,
    frames: slice | None = None,
) -> torch.Tensor | None:
    """Grant & Grigorieff amplitude filters ``q_t(k)``: ``(t, *radius.shape)``, or ``None`` (no dose).

    ``radius_cycles_per_px`` is ``|k|`` in cycles per pixel of size ``pixel_size_angstrom``;
    ``frames`` selects a slice of the movie's frames (default all).
    """
    if exposure is None or exposure.dose_per_frame_e_per_a2 is None:
        return None
    dose = frame_doses(
        n_frames, exposure.dose_per_frame_e_per_a2, pre_exposure=exposure.pre_exposure_e_per_a2
    ).to(device=radius_cycles_per_px.device, dtype=radius_cycles_per_px.dtype)
    if frames is not None:
        dose = dose[frames]
    ne = critical_exposure(
        radius_cycles_per_px / pixel_size_angstrom, voltage_kv=exposure.voltage_kv
    )
    return torch.exp(-dose.reshape(-1, *([1] * ne.ndim)) / (2.0 * ne))


def rms_exposure_filter(
    radius_cycles_per_px: torch.Tensor,
    n_frames: int,
    exposure: Exposure | None,
    *,
    pixel_size_angstrom: float,
) -> torch.Tensor | None:
    """``sqrt(mean_t q_t(k)^2)``: the signal filter of a dose-weighted average, or ``None``."""
    if exposure is None or exposure.dose_per_frame_e_per_a2 is None:
        return None
    total = torch.zeros_like(radius_cycles_per_px)
    for start in range(0, n_frames, 8):  # bounded memory on large grids
        q = exposure_filters(
            radius_cycles_per_px,
            n_frames,
            exposure,
            pixel_size_angstrom=pixel_size_angstrom,
            frames=slice(start, start + 8),
        )
        assert q is not None
        total += q.pow(2).sum(0)
    return (total / n_frames).sqrt()


def reference_misr(
    frames: torch.Tensor,
    motion,
    *,
    exposure: Exposure | None = None,
    factor: int = 2,
    regularisation: float = 0.25,
    tile_size_px: int | None = None,
    tile_overlap_px: int = 32,
    frame_chunk: int = 4,
    signal=None,
) -> torch.Tensor:
    """Multi-frame SR of ``(t, h, w)`` LR frames -> ``(factor h, factor w)`` (counts per HR px per frame).

    ``motion`` is in LR pixels (``shifts[t]`` = specimen position in frame t relative to frame 0).
    ``exposure=None`` (or an unknown dose per frame) means no dose weighting. ``regularisation``
    scales the noise-based Tikhonov weight (module docstring). Tiles are ``tile_size_px`` LR
    pixels, overlapping by ``tile_overlap_px``; ``None``: the whole frame (periodic) when the motion
    is global and the frames are at most 1024 px, else 512 px tiles, or 128 px with local motion.
    ``signal``: solve for the MMSE estimate under that signal spectrum instead (module docstring);
    ``regularisation`` is then unused.
    """
    if regularisation < 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    t, h, w = frames.shape
    if tile_size_px is None:
        tile_size_px = (
            128 if motion.local_shifts_px is not None else (1024 if max(h, w) <= 1024 else 512)
        )
    if not 0 <= 2 * tile_overlap_px < tile_size_px:
        raise ValueError(
            f"tile overlap ({tile_overlap_px} px) must be below half the tile size ({tile_size_px} px)"
        )
    out_dtype = frames.dtype if frames.is_floating_point() else torch.float32
    opts = dict(
        factor=int(factor),
        exposure=exposure,
        regularisation=regularisation,
        frame_chunk=frame_chunk,
        signal=signal,
    )
    if motion.local_shifts_px is None and h <= tile_size_px and w <= tile_size_px:
        shifts = motion.global_shifts_px.to(frames.device, torch.float64)
        return _solve_tile(frames, shifts, **opts).to(out_dtype)

    f = int(factor)
    out = torch.zeros(f * h, f * w, dtype=torch.float64, device=frames.device)
    weight = torch.zeros_like(out)
    for y0, ly in _tile_starts(h, tile_size_px, tile_overlap_px):
        for x0, lx in _tile_starts(w, tile_size_px, tile_overlap_px):
            centre = torch.tensor(
                [[y0 + (ly - 1) / 2, x0 + (lx - 1) / 2]], device=motion.global_shifts_px.device
            )
            s = motion.shifts_at(centre)[:, 0].to(frames.device, torch.float64)  # (t, 2)
            lo = torch.tensor([-y0, -x0], device=frames.device)
            hi = torch.tensor([h - ly - y0, w - lx - x0], device=frames.device)
            offset = torch.minimum(torch.maximum(s.round().long(), lo), hi)  # (t, 2) integer cut
            rows = y0 + offset[:, 0, None] + torch.arange(ly, device=frames.device)
            cols = x0 + offset[:, 1, None] + torch.arange(lx, device=frames.device)
            frame_index = torch.arange(t, device=frames.device)[:, None, None]
            tile = frames[frame_index, rows[:, :, None], cols[:, None, :]]
            sr = _solve_tile(tile, s - offset, **opts)
            win_y = _window(y0, ly, h, tile_overlap_px * f, f)
            win = (win_y[:, None] * _window(x0, lx, w, tile_overlap_px * f, f)).to(out.device)
            out[f * y0 : f * (y0 + ly), f * x0 : f * (x0 + lx)] += win * sr
            weight[f * y0 : f * (y0 + ly), f * x0 : f * (x0 + lx)] += win
    return (out / weight).to(out_dtype)


def _tile_starts(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, length)`` of overlapping tiles covering ``0 .. n-1``."""
    if n <= size:
        return [(0, n)]
    count = math.ceil((n - overlap) / (size - overlap))
    starts = torch.linspace(0, n - size, count).round().long().tolist()
    return [(s, size) for s in starts]


def _window(start: int, length: int, n: int, overlap_hr: int, f: int) -> torch.Tensor:
    """Blending weights ``(f length,)`` on HR pixels for a tile overlapping its neighbours by ``overlap_hr``.

    Zero on the outer quarter of the overlap (where the periodic tile model is wrong), a raised
    cosine over the middle half, one elsewhere and at the image border.
    """
    m = f * length
    margin, ramp_len = overlap_hr // 4, max(overlap_hr - 2 * (overlap_hr // 4), 1)
    ramp = (
        torch.sin(0.5 * math.pi * (torch.arange(ramp_len, dtype=torch.float64) + 0.5) / ramp_len)
        ** 2
    )
    edge = torch.cat([torch.zeros(margin, dtype=torch.float64), ramp])
    win = torch.ones(m, dtype=torch.float64)
    if start > 0:
        win[: edge.numel()] = edge
    if start + length < n:
        win[m - edge.numel() :] = edge.flip(0)
    return win


def _solve_tile(
    frames: torch.Tensor,
    shifts: torch.Tensor,
    *,
    factor: int,
    exposure: Exposure | None,
    regularisation: float,
    frame_chunk: int,
    signal=None,
) -> torch.Tensor:
    """Solve the module's model for one ``(t, h, w)`` tile with global ``(t, 2)`` LR shifts."""
    t, h, w = frames.shape
    f, n = factor, factor * factor
    dev = frames.device
    pix = exposure.pixel_size_angstrom if exposure is not None else 1.0
    fy, fx = alias_frequencies(h, f, device=dev), alias_frequencies(w, f, device=dev)  # (h|w, f)
    base = box_response(fy, f)[:, None, :, None] * box_response(fx, f)[None, :, None, :] / f**2
    rad_hr = torch.sqrt(fy[:, None, :, None] ** 2 + fx[None, :, None, :] ** 2)  # (h, w, f, f)
    qbar_hr = rms_exposure_filter(rad_hr, t, exposure, pixel_size_angstrom=pix / f)
    ky = torch.fft.fftfreq(h, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, device=dev, dtype=torch.float64)[None, :]
    rad_lr = torch.sqrt(ky**2 + kx**2)
    qbar_lr = rms_exposure_filter(rad_lr, t, exposure, pixel_size_angstrom=pix)

    gram = torch.zeros(h, w, n, n, dtype=torch.complex128, device=dev)
    rhs = torch.zeros(h, w, n, dtype=torch.complex128, device=dev)
    average = torch.zeros(h, w, dtype=torch.complex128, device=dev)  # aligned dose-weighted mean
    for c0 in range(0, t, frame_chunk):
        sl = slice(c0, c0 + frame_chunk)
        spectra = torch.fft.fft2(frames[sl].double())
        s = shifts[sl]
        py = torch.exp(-2j * math.pi * fy * f * s[:, 0, None, None])  # (c, h, f)
        px = torch.exp(-2j * math.pi * fx * f * s[:, 1, None, None])  # (c, w, f)
        model = base * py[:, :, None, :, None] * px[:, None, :, None, :]  # (c, h, w, f, f)
        weights_lr = torch.full_like(rad_lr, 1.0 / t)[None]
        q_hr = exposure_filters(rad_hr, t, exposure, pixel_size_angstrom=pix / f, frames=sl)
        if q_hr is not None and qbar_hr is not None and qbar_lr is not None:
            model = model * (q_hr / qbar_hr)
            q_lr = exposure_filters(rad_lr, t, exposure, pixel_size_angstrom=pix, frames=sl)
            weights_lr = q_lr / (t * qbar_lr)
        model = model.reshape(-1, h, w, n)
        for a, y in zip(model, spectra, strict=True):
            gram += a.conj()[..., :, None] * a[..., None, :]
            rhs += a.conj() * y[..., None]
        align = torch.exp(2j * math.pi * (ky * s[:, 0, None, None] + kx * s[:, 1, None, None]))
        average += (weights_lr * spectra * align).sum(0)

    if signal is not None:  # MMSE: the Gaussian prior of the spectrum, per alias
        sigma2 = max(float(frames.double().mean()), 1e-12) * h * w  # Poisson, per LR coefficient
        power = signal.for_grid(f * max(h, w)).at(rad_hr).reshape(h, w, n) * (f * h) * (f * w)
        precision = sigma2 / power.clamp(min=1e-300)
        system = gram + torch.diag_embed(precision.to(gram.dtype))
        # one factorisation: the estimate, and the resolution matrix (G + Lambda)^-1 G whose
        # diagonal is each coefficient's signal gain, flattened per shell below
        both = torch.linalg.solve(system, torch.cat([rhs[..., None], gram], dim=-1))
        x = assemble_hr_spectrum(both[..., 0].reshape(h, w, f, f))
        gain = both[..., 1:].diagonal(dim1=-2, dim2=-1).real
        gain = assemble_hr_spectrum(gain.reshape(h, w, f, f))
        shell = (assemble_hr_spectrum(rad_hr) * max(f * h, f * w)).round().long().flatten()
        mean_gain = torch.zeros(int(shell.max()) + 1, dtype=torch.float64, device=dev)
        mean_gain.index_add_(0, shell, gain.flatten())
        mean_gain /= torch.bincount(shell, minlength=mean_gain.numel()).clamp(min=1)
        x = x / mean_gain.clamp(min=UNIT_TRANSFER_FLOOR)[shell].reshape(x.shape)
        return torch.fft.ifft2(x).real
    wy, wx = zero_padding_weights(h, f, device=dev), zero_padding_weights(w, f, device=dev)
    prior = average[..., None, None] * (wy[:, None, :, None] * wx[None, :, None, :])
    lam = max(regularisation * _inverse_snr(frames, average), 1e-9 * t)
    eye = torch.eye(n, dtype=gram.dtype, device=dev)
    x = torch.linalg.solve(gram + lam * eye, rhs + lam * prior.reshape(h, w, n))
    return torch.fft.ifft2(assemble_hr_spectrum(x.reshape(h, w, f, f))).real


def _inverse_snr(frames: torch.Tensor, average: torch.Tensor) -> float:
    """``sigma^2 / P``: Poisson noise power per frame over the signal power of a white-spectrum prior.

    ``sigma^2 / (h w) = mu`` (mean counts per LR pixel per frame); ``P / (h w)`` is the signal
    variance per pixel: the variance of the aligned average ``average`` (its ``fft2``) minus its
    noise variance ``mu / t``. Floored so that a signal-free movie gets a large, finite weight.
    """
    t, h, w = frames.shape
    mu = max(float(frames.double().mean()), 1e-12)
    power = average.abs().pow(2)
    variance = float(power.sum() - power[0, 0]) / (h * w) ** 2
    signal = max(variance - mu / t, 1e-6 * mu / t)
    return mu / signal


def _every_other(exposure: Exposure, offset: int) -> Exposure:
    """Frames ``offset, offset + 2, ...`` as a movie of their own, in this reference's terms (it
    reads the dose per frame and the pre-exposure, not ``Exposure.exposure_frames``): a doubled
    dose per frame and a shifted pre-exposure give each frame its own mid-frame dose."""
    from dataclasses import replace

    d = exposure.dose_per_frame_e_per_a2
    if d is None:
        return exposure
    return replace(
        exposure,
        dose_per_frame_e_per_a2=2 * d,
        pre_exposure_e_per_a2=exposure.pre_exposure_e_per_a2 + (offset - 0.5) * d,
    )


def reference_explicit(frames, motion, *, exposure, regularisation=0.25):
    """The explicit regime's image and spectrum: even/odd ``misr``, half-set spectrum, MMSE solve."""
    from cryozssr.baselines.mmse import half_set_spectrum

    frames = frames.to(torch.float32)
    t = frames.shape[0]
    halves = []
    for offset in (0, 1):
        indices = list(range(offset, t, 2))
        halves.append(
            reference_misr(
                frames[indices],
                motion.select(indices),
                exposure=_every_other(exposure, offset),
                regularisation=regularisation,
            )
        )
    spectrum = half_set_spectrum(*halves)
    return reference_misr(frames, motion, exposure=exposure, signal=spectrum), spectrum, halves
