"""The SR network after HighRes-net (Deudon et al. 2020), and ShiftNet for registration.

Differences from HighRes-net's public code, on purpose: tensors keep ``(h, w)`` order everywhere
(its reshape swapped them, breaking non-square images); fusion handles any ``K`` (an odd one out is
carried to the next step, never dropped); there are no padding/status masks (every input is real).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cryozssr.ops import interpolate_up


def upsample2x(images: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling of ``(..., h, w)`` (:func:`cryozssr.ops.interpolate_up`)."""
    return interpolate_up(images, 2)


class ResidualBlock(nn.Module):
    """``x + PReLU(conv(PReLU(conv(x))))`` with 3x3 convolutions (HighRes-net's block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRNet(nn.Module):
    """Multi-image 2x super-resolution: ``(b, K, h, w)`` LR inputs -> ``(b, 1, 2h, 2w)``.

    Inputs are upsampled 2x (bilinear) first; the reference is their pixel-wise median; each input
    is concatenated with the reference and encoded (conv + PReLU, residual blocks, conv); encodings
    are fused pairwise, recursively, with shared weights (concatenate a pair, residual block,
    conv + PReLU) until one is left; a decoder conv (zero at initialisation, so training starts
    from the upsampled input average) gives the residual added to the upsampled input average.
    Any ``K >= 1`` and any ``(h, w)`` work.
    """

    def __init__(self, *, channels: int = 64, res_blocks: int = 2) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1),
            nn.PReLU(),
            *[ResidualBlock(channels) for _ in range(res_blocks)],
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.fuse = nn.Sequential(
            ResidualBlock(2 * channels),
            nn.Conv2d(2 * channels, channels, 3, padding=1),
            nn.PReLU(),
        )
        self.decoder = nn.Conv2d(channels, 1, 3, padding=1)
        # start from "no residual": an untrained network returns the upsampled input average
        nn.init.zeros_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)
        self.res_blocks = res_blocks

    def receptive_radius_hr(self, n_inputs: int) -> int:
        """Half-width (HR pixels) of the region of the upsampled inputs one output pixel sees."""
        n_steps = math.ceil(math.log2(n_inputs)) if n_inputs > 1 else 0
        n_convs = (2 + 2 * self.res_blocks) + 3 * n_steps + 1
        return n_convs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        b, k, h, w = inputs.shape
        up = upsample2x(inputs)  # (b, K, 2h, 2w)
        reference = up.median(dim=1, keepdim=True).values.expand(-1, k, -1, -1)
        pairs = torch.stack([up, reference], dim=2).reshape(b * k, 2, 2 * h, 2 * w)
        codes = self.encoder(pairs).reshape(b, k, -1, 2 * h, 2 * w)
        states = list(codes.unbind(dim=1))
        while len(states) > 1:
            merged = [
                self.fuse(torch.cat([states[i], states[i + 1]], dim=1))
                for i in range(0, len(states) - 1, 2)
            ]
            if len(states) % 2:
                merged.append(states[-1])  # the odd one out waits for the next step
            states = merged
        return up.mean(dim=1, keepdim=True) + self.decoder(states[0])


class ShiftNet(nn.Module):
    """Estimate the ``(y, x)`` shift (pixels) that registers an SR image to its target.

    ``(b, 1, H, W)`` SR and target -> ``(b, 2)``. Convolutions + max-pooling, then a global average
    (any size works, unlike HighRes-net's fixed-size dense layer); the last layer starts at zero,
    so training starts from "no shift".
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 2
        for _ in range(3):
            layers += [
                nn.Conv2d(c_in, channels, 3, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.LeakyReLU(0.1),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, sr: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.cat([target, sr], dim=1)
        x = self.features(x - x.mean(dim=(-2, -1), keepdim=True)).mean(dim=(-2, -1))
        return self.head(x)


def lanczos_shift(images: torch.Tensor, shifts_px: torch.Tensor, *, a: int = 3) -> torch.Tensor:
    """Translate ``(b, 1, h, w)`` images by ``(b, 2)`` ``(y, x)`` shifts with a Lanczos-``a`` kernel.

    Content moves by ``+shift`` (as :func:`cryozssr.ops.fourier_shift`). Separable: two grouped
    ``conv2d`` calls, one kernel per image, normalised to sum 1; replicate padding at the borders.
    Differentiable in both the images and the shifts.
    """
    b, c, h, w = images.shape
    if c != 1 or shifts_px.shape != (b, 2):
        raise ValueError("lanczos_shift takes (b, 1, h, w) images and (b, 2) shifts")
    radius = a + math.ceil(float(shifts_px.detach().abs().max())) if b else a
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    out = images.reshape(1, b, h, w)
    for axis in (0, 1):
        # out(x) = sum_j in(x - j) L(j - s): conv2d correlates, so weight[c - j] = L(j - s)
        arg = taps.flip(0)[None, :] - shifts_px[:, axis : axis + 1]  # (b, n): j - s, j from +r down
        kernel = torch.sinc(arg) * torch.sinc(arg / a) * (arg.abs() < a)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        if axis == 0:
            padded = F.pad(out, (0, 0, radius, radius), mode="replicate")
            out = F.conv2d(padded, kernel[:, None, :, None], groups=b)
        else:
            padded = F.pad(out, (radius, radius, 0, 0), mode="replicate")
            out = F.conv2d(padded, kernel[:, None, None, :], groups=b)
    return out.reshape(b, 1, h, w)
