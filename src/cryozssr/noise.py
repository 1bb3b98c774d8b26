"""The noise a movie holds, measured from the movie itself: its power spectrum per frame.

Consecutive frames show (almost) the same specimen: aligned onto each other, their difference keeps
the noise of both and cancels the signal. With pairs ``(0, 1), (2, 3), ...``,

.. math::

   \\hat N(k) = \\frac{1}{2 P} \\sum_{i < P} \\left| Y_{2i}(k) - e^{-2\\pi i k\\cdot(s_{2i} - s_{2i+1})}
   Y_{2i+1}(k) \\right|^2

estimates the noise power per frame at every frequency (``fft2`` units: ``E|N_t(k)|^2``), whatever
the detector and the units: Poisson counts (flat, equal to the mean counts per pixel), counting
detectors whose noise is correlated between neighbouring pixels (not flat, not radial), scaled
integers or gain-normalised floats. The raw estimate is averaged over a small square of
neighbouring frequencies (``smooth_bins``), which keeps the spectrum's 2D shape. What the pair
difference leaves of the signal (damage between two consecutive frames, residual local motion,
motion blur) is counted as noise: a conservative bias, small at the doses and motions of real
movies. One spectrum for all frames: a dose that changes from frame to frame is not modelled.
"""

from __future__ import annotations

import math

import torch


def frame_noise_spectrum(
    frames: torch.Tensor, shifts_px: torch.Tensor, *, smooth_bins: int = 5
) -> torch.Tensor:
    """Noise power per frame ``(h, w)`` on the ``fft2`` grid of ``(t, h, w)`` frames (module docstring).

    ``shifts_px``: ``(t, 2)`` ``(y, x)`` position of the specimen in each frame (pixels of the
    frames). Needs at least 2 frames; with an odd count the last frame is left out.
    """
    t, h, w = frames.shape
    if t < 2:
        raise ValueError(f"the noise spectrum needs at least 2 frames, got {t}")
    dev = frames.device
    ky = torch.fft.fftfreq(h, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, device=dev, dtype=torch.float64)[None, :]
    s = shifts_px.to(dev, torch.float64)
    power = torch.zeros(h, w, dtype=torch.float64, device=dev)
    pairs = t // 2
    for i in range(pairs):
        a, b = 2 * i, 2 * i + 1
        d = s[a] - s[b]  # move frame b's content onto frame a's position
        ramp = torch.exp(-2j * math.pi * (ky * d[0] + kx * d[1]))
        diff = torch.fft.fft2(frames[a].double()) - torch.fft.fft2(frames[b].double()) * ramp
        power += diff.abs().pow(2)
    power /= 2 * pairs
    # the DC difference is the dose difference between the two frames, not noise: its neighbours'
    power[0, 0] = 0.25 * (power[0, 1] + power[1, 0] + power[0, -1] + power[-1, 0])
    if smooth_bins > 1:
        pad = smooth_bins // 2
        wrapped = torch.cat([power[-pad:], power, power[:pad]], dim=0)
        wrapped = torch.cat([wrapped[:, -pad:], wrapped, wrapped[:, :pad]], dim=1)
        power = torch.nn.functional.avg_pool2d(
            wrapped[None, None], kernel_size=2 * pad + 1, stride=1
        )[0, 0]
    return power.to(torch.float32 if frames.dtype != torch.float64 else torch.float64)


def white_noise_equivalent(noise_spectrum: torch.Tensor) -> float:
    """Mean noise power per coefficient divided by the pixel count: for Poisson counts this is the
    mean count per pixel per frame (what a white model would assume)."""
    h, w = noise_spectrum.shape[-2:]
    return float(noise_spectrum.double().mean()) / (h * w)
