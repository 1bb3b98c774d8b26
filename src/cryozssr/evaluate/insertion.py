"""Trilinear Fourier insertion of central slices, with ``index_add_`` (pure tensor code).

Same geometry and layout as torch-fourier-slice's ``insert_central_slices_rfft_3d`` (fftshifted
rfft grids, rotation matrices acting on the slice's xyz frequency coordinates, Friedel mates
added on the ``x = 0`` plane), but accumulates with ``index_add_`` on flat real views, which is
several times faster on the CPU than ``index_put_(accumulate=True)`` on complex tensors.
"""

from __future__ import annotations

import torch


def insert_slices(
    slices: torch.Tensor, rotation_matrices: torch.Tensor, *, size_px: int
) -> torch.Tensor:
    """Insert ``(n, c, p, p//2+1)`` fftshifted rfft slices into a ``(c, p, p, p//2+1)`` grid.

    ``rotation_matrices`` ``(n, 3, 3)`` map a slice's ``(kx, ky, 0)`` to the volume's
    ``(kx, ky, kz)``. Frequencies beyond 0.5 cycles/px are not inserted. Returns the sum of
    ``w * value`` (trilinear weights ``w``), complex, like torch-fourier-slice's first output.
    """
    _, c, h, wr = slices.shape
    p = size_px
    if h != p or wr != p // 2 + 1:
        raise ValueError(f"slices {tuple(slices.shape)} are not the rfft of {p} x {p} images")
    dev = slices.device
    ky = (torch.arange(p, device=dev, dtype=torch.float32) - p // 2) / p
    kx = torch.arange(p // 2 + 1, device=dev, dtype=torch.float32) / p
    kyy, kxx = torch.meshgrid(ky, kx, indexing="ij")
    keep = (kyy**2 + kxx**2 <= 0.25) & ~((kxx == 0) & (kyy < 0))  # half plane + its Friedel mates
    xyz = torch.stack([kxx[keep], kyy[keep], torch.zeros_like(kxx[keep])], -1)  # (m, 3)
    vals = slices[:, :, keep].permute(0, 2, 1)  # (n, m, c)
    coords = torch.einsum("nij,mj->nmi", rotation_matrices.float().to(dev), xyz)  # (n, m, xyz)
    flip = coords[..., 0] < 0
    coords = torch.where(flip[..., None], -coords, coords)
    vals = torch.where(flip[..., None], vals.conj(), vals)
    coords = coords.reshape(-1, 3) * p
    vals = torch.view_as_real(vals.reshape(-1, c).to(torch.complex64)).reshape(-1, 2 * c)
    x, y, z = coords[:, 0], coords[:, 1] + p // 2, coords[:, 2] + p // 2
    x0, y0, z0 = x.floor(), y.floor(), z.floor()
    fx, fy, fz = x - x0, y - y0, z - z0
    x0, y0, z0 = x0.long(), y0.long(), z0.long()
    nx = p // 2 + 1
    out = torch.zeros(p * p * nx, 2 * c, device=dev, dtype=torch.float32)
    conj_sign = torch.tensor([1.0, -1.0], device=dev).repeat(c)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                w = (fz if dz else 1 - fz) * (fy if dy else 1 - fy) * (fx if dx else 1 - fx)
                zi, yi, xi = z0 + dz, y0 + dy, x0 + dx
                ok = (zi >= 0) & (zi < p) & (yi >= 0) & (yi < p) & (xi < nx) & (w > 0)
                zi, yi, xi, wk, v = zi[ok], yi[ok], xi[ok], w[ok], vals[ok]
                wv = v * wk[:, None]
                out.index_add_(0, (zi * p + yi) * nx + xi, wv)
                # Friedel mate of points on the x = 0 plane (not the origin itself)
                on0 = (xi == 0) & ~((zi == p // 2) & (yi == p // 2))
                zm, ym = (p - zi[on0]) % p, (p - yi[on0]) % p
                out.index_add_(0, (zm * p + ym) * nx, wv[on0] * conj_sign)
    out = out.reshape(p, p, nx, c, 2).permute(3, 0, 1, 2, 4).contiguous()
    return torch.view_as_complex(out)
