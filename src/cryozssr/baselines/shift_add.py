"""Shift-and-add ("drizzle") multi-frame super-resolution with a Wiener deconvolution of the aperture.

Every LR pixel of every (dose-filtered) frame is dropped onto the HR grid where its centre lands on
the frame-0 specimen position: LR pixel ``(I, J)`` of frame ``t`` is centred at HR coordinate
``f I + (f-1)/2`` in frame ``t``, i.e. at ``f I + (f-1)/2 - f s_t(I, J)`` on frame 0 (``s_t`` =
global + local shift in LR px). The drop is one HR pixel wide (drizzle's ``pixfrac = 1/f``), so it
lands on the 4 nearest HR pixels with their area overlaps, i.e. bilinear weights. Values (divided
by ``f^2``: counts per HR pixel) and weights are accumulated; their ratio is the shift-and-add
image. With sub-pixel shifts spread over the pixel, it is the specimen seen through the LR pixel
aperture (an ``f``-pixel box, ``sin(pi f k) / (f sin(pi k))`` on the HR grid) and the drop (a
triangle, ``sinc(k)^2``): together ``sinc(f k) sinc(k)`` per axis (``k`` in cycles/HR px), which
a Wiener filter inverts (:func:`cryozssr.ops.box_transfer_rfft` for ``f`` and for 1). HR pixels
that no drop reached (few frames, unlucky shifts) are filled from their neighbours. A
nearest-pixel drop, tried first, gave a noisier image (FRC past the LR Nyquist ~0.05 lower on a
simulated movie).

Dose weighting: frame ``t`` is filtered in Fourier space by ``q_t(k) / sqrt(mean_s q_s(k)^2)``
(Grant & Grigorieff weights scaled so that their frame average is the dose-weighted average).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cryozssr.baselines._common import check_movie, exposure_filters, rms_exposure_filter
from cryozssr.dose import Exposure
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_transfer_rfft, rfft_radius


def shift_add(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None = None,
    factor: int = 2,
    wiener_snr: float = 10.0,
    frame_chunk: int = 4,
) -> torch.Tensor:
    """Shift-and-add SR of ``(t, h, w)`` LR frames -> ``(factor h, factor w)`` (counts per HR px per frame).

    ``motion`` is in LR pixels; its local field (if any) moves every pixel individually.
    ``wiener_snr`` is the signal-to-noise ratio assumed by the Wiener filter ``H / (H^2 + 1/snr)``
    (scaled to unit gain at ``k = 0``)
    (``inf``: plain inverse filter, ``0``: no deconvolution). ``frame_chunk`` frames are processed
    at a time (memory ~ ``frame_chunk * h * w``).
    """
    check_movie(frames, motion, factor=factor, min_frames=1, method="shift-add")
    if wiener_snr < 0:
        raise ValueError(f"wiener_snr must be >= 0, got {wiener_snr}")
    t, h, w = frames.shape
    f = int(factor)
    dev = frames.device
    out_dtype = frames.dtype if frames.is_floating_point() else torch.float32
    pix = exposure.pixel_size_angstrom if exposure is not None else 1.0
    rad_lr = rfft_radius((h, w), device=dev).double()
    qbar = rms_exposure_filter(rad_lr, t, exposure, pixel_size_angstrom=pix)

    centre_y = (f * torch.arange(h, device=dev, dtype=torch.float64) + (f - 1) / 2)[:, None]
    centre_x = (f * torch.arange(w, device=dev, dtype=torch.float64) + (f - 1) / 2)[None, :]
    total = torch.zeros(f * h * f * w, dtype=torch.float64, device=dev)
    weight = torch.zeros_like(total)
    for c0 in range(0, t, frame_chunk):
        sl = slice(c0, c0 + frame_chunk)
        chunk = frames[sl].double()
        q = exposure_filters(rad_lr, t, exposure, pixel_size_angstrom=pix, frames=sl)
        if q is not None and qbar is not None:
            chunk = torch.fft.irfft2(torch.fft.rfft2(chunk) * (q / qbar), s=(h, w))
        shifts = motion.global_shifts_px[sl].to(dev, torch.float64)[:, None, None, :]
        if motion.local_shifts_px is not None:
            part = MotionField(
                motion.global_shifts_px[sl], motion.image_shape, motion.local_shifts_px[sl]
            )
            local = part.local_field()
            assert local is not None
            shifts = shifts + local.to(dev, torch.float64)
        py = centre_y - f * shifts[..., 0]
        px = centre_x - f * shifts[..., 1]
        y0, x0 = torch.floor(py), torch.floor(px)
        for dy in (0, 1):
            for dx in (0, 1):
                wgt = (1 - (py - y0 - dy).abs()) * (1 - (px - x0 - dx).abs())
                iy, ix = (y0 + dy).long(), (x0 + dx).long()
                inside = (iy >= 0) & (iy < f * h) & (ix >= 0) & (ix < f * w)
                index = (iy * (f * w) + ix)[inside]
                total.index_add_(0, index, (wgt * chunk)[inside] / f**2)
                weight.index_add_(0, index, wgt[inside])
    weight = weight.reshape(f * h, f * w)
    image = _fill_holes(total.reshape(f * h, f * w), weight)
    return _coverage_wiener(image, weight, factor=f, snr=wiener_snr).to(out_dtype)


_LEVELS = 3  # SNR steps of 4 below the interior's


def _coverage_wiener(
    image: torch.Tensor, weight: torch.Tensor, *, factor: int, snr: float
) -> torch.Tensor:
    """Wiener deconvolution at the SNR each HR pixel has: ``snr`` times its frame coverage.

    Along a drifted-out border only some frames reach a pixel, so its noise is larger (1 frame of
    40: ~6x), and one global Wiener filter amplified it further (the demo showed a band of 4-10x
    the interior noise; ``tests/test_baselines.py``: 2.9x, now 2.0x). Here the
    pixel's coverage ``c`` (drop weight over the interior's median) scales the SNR: the image is
    deconvolved at ``snr``, ``snr / 4``, ... ``snr / 64`` and blended per pixel by ``log4(c)``,
    so partly covered pixels are deconvolved less (and so amplified less), fully covered ones as
    before.
    """
    if snr == 0:
        return image
    ref = weight[weight > 0].median() if bool((weight > 0).any()) else weight.new_tensor(1.0)
    coverage = (weight / ref).clamp(min=4.0**-_LEVELS, max=1.0)
    if bool((coverage >= 1).all()):
        return _wiener_deconvolve(image, factor=factor, snr=snr)
    level = -torch.log(coverage) / math.log(4.0)  # 0: full coverage, 1: 1/4, 2: 1/16...
    out = torch.zeros_like(image)
    for i in range(_LEVELS + 1):
        blend = (1 - (level - i).abs()).clamp(min=0)
        if bool((blend > 0).any()):
            out += blend * _wiener_deconvolve(image, factor=factor, snr=snr / 4**i)
    return out


def _fill_holes(total: torch.Tensor, weight: torch.Tensor, max_iterations: int = 8) -> torch.Tensor:
    """``total / weight``, with pixels no drop reached filled by 3x3 normalised convolution."""
    total, weight = total.clone(), weight.clone()
    for _ in range(max_iterations):
        empty = weight == 0
        if not bool(empty.any()):
            break
        blur_total = F.avg_pool2d(total[None, None], 3, stride=1, padding=1)[0, 0]
        blur_weight = F.avg_pool2d(weight[None, None], 3, stride=1, padding=1)[0, 0]
        total = torch.where(empty, blur_total, total)
        weight = torch.where(empty, blur_weight, weight)
    image = total / weight.clamp(min=1e-12)
    still = weight == 0
    if bool(still.any()):
        image[still] = image[~still].mean() if bool((~still).any()) else 0.0
    return image


def _wiener_deconvolve(image: torch.Tensor, *, factor: int, snr: float) -> torch.Tensor:
    """Divide out the shift-and-add transfer (aperture x drop) with a Wiener filter."""
    if snr == 0:
        return image
    shape = tuple(image.shape)
    transfer = box_transfer_rfft(shape, factor, device=image.device).double()
    transfer = transfer * box_transfer_rfft(shape, 1, device=image.device).double()  # the drop
    inverse = transfer * (1.0 + 1.0 / snr) / (transfer**2 + 1.0 / snr)  # unit gain at k = 0
    return torch.fft.irfft2(torch.fft.rfft2(image) * inverse, s=tuple(image.shape))
