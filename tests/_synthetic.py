"""A small synthetic movie with known sub-pixel motion: HR scene -> shifted -> 2x2 box sum -> Poisson."""

from __future__ import annotations

import torch

from cryozssr.ops import box_sum, fourier_shift


def band_limited_scene(size_hr: int, *, seed: int, cutoff: float = 0.3) -> torch.Tensor:
    """A smooth random scene with content well past the LR Nyquist (0.25 cycles/HR px), mean 1."""
    g = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft2(torch.randn(size_hr, size_hr, generator=g, dtype=torch.float64))
    ky = torch.fft.fftfreq(size_hr, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(size_hr, dtype=torch.float64)[None, :]
    scene = torch.fft.irfft2(spec * torch.exp(-(ky**2 + kx**2) / cutoff**2), s=(size_hr, size_hr))
    return 1.0 + 0.3 * scene / scene.std()


def synthetic_movie(
    *, size_hr: int = 128, n_frames: int = 12, counts_per_hr_px: float = 4.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(lr_counts (t, h, w) int32, shifts_lr_px (t, 2), truth_hr (H, W))``.

    Frame ``t`` shows the scene moved by ``shifts_lr_px[t] * 2`` HR pixels (a drift that slows).
    """
    g = torch.Generator().manual_seed(seed + 1)
    scene = band_limited_scene(size_hr, seed=seed)
    t = torch.arange(n_frames, dtype=torch.float64)
    drift = torch.stack([2.0 * torch.sqrt(t), -1.3 * torch.sqrt(t)], dim=-1)  # LR px
    jitter = 0.15 * torch.randn(n_frames, 2, generator=g, dtype=torch.float64)
    jitter[0] = 0
    shifts_lr = drift + jitter
    hr = fourier_shift(scene.expand(n_frames, -1, -1), 2 * shifts_lr) * counts_per_hr_px
    lr = torch.poisson(box_sum(hr.clamp(min=0)), generator=g).to(torch.int32)
    return lr, shifts_lr.float(), scene.float()


def write_movies(folder, n: int, *, prefix: str, seed: int, size_hr: int = 96, n_frames: int = 6):
    """``n`` small uint16 MRC movies ``<prefix><i>.mrc`` (3 A pixels) in ``folder``; their paths."""
    from cryozssr.io import write_mrc

    paths = []
    for i in range(n):
        lr, _, _ = synthetic_movie(size_hr=size_hr, n_frames=n_frames, seed=seed + i)
        paths.append(
            write_mrc(
                folder / f"{prefix}{i}.mrc", lr.numpy(), pixel_size_angstrom=3.0, mode="uint16"
            )
        )
    return paths
