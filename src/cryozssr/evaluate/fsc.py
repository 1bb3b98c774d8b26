"""Fourier shell correlation of 3D maps, vectorised, and resolution at a threshold. Pure tensor code.

torch-fourier-shell-correlation loops over shells in Python (11-14 s at 256^3 here); this is one
``bincount`` per sum, as :func:`cryozssr.register.frc_curve`.
"""

from __future__ import annotations

import torch

from cryozssr.fourier import shell_index


def fsc_curve(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FSC of two ``(d, d, d)`` maps: ``(k, fsc)``, ``d // 2`` shells 1/d wide, ``k`` in cycles/voxel."""
    if a.shape != b.shape or a.ndim != 3 or len(set(a.shape)) != 1:
        raise ValueError("fsc_curve takes two cubic (d, d, d) maps of the same shape")
    d = a.shape[-1]
    fa = torch.fft.rfftn(a.double())
    fb = torch.fft.rfftn(b.double())
    kz = torch.fft.fftfreq(d, device=a.device, dtype=torch.float64)[:, None, None]
    ky = torch.fft.fftfreq(d, device=a.device, dtype=torch.float64)[None, :, None]
    kx = torch.fft.rfftfreq(d, device=a.device, dtype=torch.float64)[None, None, :]
    n = d // 2
    shell = shell_index(torch.sqrt(kz**2 + ky**2 + kx**2), d, max_shell=n).flatten()
    weight = torch.ones(fa.shape, dtype=torch.float64, device=a.device)
    weight[..., 1 : (d - 1) // 2 + 1] = 2.0
    weight = weight.flatten()
    cross = torch.bincount(shell, weight * (fa * fb.conj()).real.flatten(), minlength=n + 1)
    pa = torch.bincount(shell, weight * (fa.abs() ** 2).flatten(), minlength=n + 1)
    pb = torch.bincount(shell, weight * (fb.abs() ** 2).flatten(), minlength=n + 1)
    fsc = cross / torch.sqrt(pa * pb).clamp(min=1e-300)
    k = torch.arange(n + 1, dtype=torch.float64, device=a.device) / d
    return k[:n], fsc[:n]


def resolution_at(
    k: torch.Tensor, curve: torch.Tensor, threshold: float, *, pixel_size_angstrom: float
) -> float:
    """Resolution (Angstrom) where ``curve`` first falls below ``threshold`` (linear interpolation).

    Shell 0 is ignored. If the curve never falls below, the resolution of the last shell.
    """
    c = curve.double().cpu()
    kk = k.double().cpu()
    for i in range(1, c.shape[0]):
        if c[i] < threshold:
            k0, k1, c0, c1 = float(kk[i - 1]), float(kk[i]), float(c[i - 1]), float(c[i])
            t = 0.0 if c0 == c1 else (c0 - threshold) / (c0 - c1)
            kt = k0 + min(max(t, 0.0), 1.0) * (k1 - k0)
            return pixel_size_angstrom / max(kt, 1e-9)
    return pixel_size_angstrom / float(kk[-1])


def fourier_crop_3d(volume: torch.Tensor, size: int) -> torch.Tensor:
    """Resample a ``(d, d, d)`` map to ``(size, size, size)`` (``size <= d``) by cropping its spectrum.

    The centre voxel ``d // 2`` maps to ``size // 2``; the mean value is kept.
    """
    d = volume.shape[-1]
    ft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(volume.double())))
    lo = d // 2 - size // 2
    ft = ft[lo : lo + size, lo : lo + size, lo : lo + size]
    out = torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(ft))).real
    return out * (size / d) ** 3
