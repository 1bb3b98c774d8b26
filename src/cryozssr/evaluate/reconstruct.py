"""3D reconstruction from known poses (oracle), CTF-corrected by Wiener filtering. Pure tensor code.

Euler angles follow RELION (:mod:`cryozssr.geometry`; rot, tilt, psi; ZYZ): the matrix
``A = Euler_angles2matrix(rot, tilt, psi)`` (RELION ``src/euler.cpp``) takes map coordinates to
image coordinates, so a particle image is the projection of the map rotated by ``A``, and its 2D
Fourier transform is the central slice of the map's 3D transform at ``A^T (kx, ky, 0)``. This is the
matrix torch-fourier-slice's ``insert_central_slices_rfft_3d`` takes (it rotates the slice's xyz
coordinates); :func:`~cryozssr.evaluate.insertion.insert_slices` is a faster equivalent.
Symmetry ``S`` (``V(S r) = V(r)``) is imposed on the reconstructed map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_ctf import calculate_ctf_2d
from torch_fourier_slice.volume_utils import separable_sinc2_correction

from cryozssr import geometry
from cryozssr.evaluate.insertion import insert_slices
from cryozssr.ops import fourier_shift


def symmetry_matrices(symmetry: str) -> torch.Tensor:
    """:func:`cryozssr.geometry.symmetry_matrices` as a float64 tensor ``(n, 3, 3)``."""
    return torch.from_numpy(geometry.symmetry_matrices(symmetry))


def extract_boxes(
    image: torch.Tensor, centres_yx: torch.Tensor, *, box_px: int, periodic: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut ``(n, box, box)`` boxes with their centre pixel ``box // 2`` on ``(n, 2)`` sub-pixel centres.

    Integer crop, then a Fourier shift of the fractional remainder. Boxes crossing the image edge
    are skipped, or wrapped around when ``periodic`` (a simulated, periodic field of view).
    Returns ``(boxes, kept)`` with ``kept`` the ``(n,)`` boolean selection.
    """
    h, w = image.shape[-2:]
    c = centres_yx.double()
    start = torch.round(c).long() - box_px // 2
    if periodic:
        kept = torch.ones(c.shape[0], dtype=torch.bool)
    else:
        kept = (start[:, 0] >= 0) & (start[:, 1] >= 0)
        kept &= (start[:, 0] + box_px <= h) & (start[:, 1] + box_px <= w)
    s = start[kept]
    iy = (s[:, 0, None] + torch.arange(box_px)[None, :]) % h
    ix = (s[:, 1, None] + torch.arange(box_px)[None, :]) % w
    boxes = image[iy[:, :, None], ix[:, None, :]]
    frac = (torch.round(c) - c)[kept].to(image.dtype)
    return fourier_shift(boxes, frac), kept


def soft_sphere(
    box_px: int, *, radius_px: float, edge_px: float = 4.0, device=None
) -> torch.Tensor:
    """``(b, b, b)`` mask: 1 within ``radius_px`` of the centre voxel ``b // 2``, cosine edge."""
    r = torch.arange(box_px, device=device, dtype=torch.float64) - box_px // 2
    d = torch.sqrt(r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2)
    t = ((d - radius_px) / edge_px).clamp(0, 1)
    return 0.5 + 0.5 * torch.cos(torch.pi * t)


def insert_particles(
    particles: torch.Tensor,
    rotation_matrices: torch.Tensor,
    *,
    ctf: dict[str, torch.Tensor | float] | None = None,
    batch_size: int = 128,
    pad_factor: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier-insert ``(n, b, b)`` particles; returns the sums ``(sum CTF F, sum CTF^2)``.

    Both are ``(p, p, p//2+1)`` fftshifted rfft grids of the padded box ``p = b * pad_factor``.
    ``rotation_matrices`` ``(n, 3, 3)`` are RELION ``A`` matrices (:func:`relion_euler_to_matrix`).
    ``ctf`` (optional) holds per-particle ``defocus_u_angstrom``, ``defocus_v_angstrom`` and
    ``angle_deg`` ``(n,)`` tensors and the scalars ``pixel_size_angstrom``, ``voltage_kv``,
    ``spherical_aberration_mm`` and ``amplitude_contrast`` (torch-ctf's model and angle).
    Particles are zero-padded and inserted ``batch_size`` at a time (memory grows with views).
    """
    n, b, _ = particles.shape
    p = b * pad_factor
    pad = (p - b) // 2
    dev = particles.device
    rot_t = rotation_matrices.double().transpose(-1, -2).to(dev)  # A^T: slice coords -> map
    num = den = None
    for i in range(0, n, batch_size):
        x = particles[i : i + batch_size].double()
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        x = F.pad(x, (pad, p - b - pad, pad, p - b - pad))
        ft = torch.fft.fftshift(torch.fft.rfft2(torch.fft.ifftshift(x, dim=(-2, -1))), dim=-2)
        if ctf is None:
            c = torch.ones(ft.shape, dtype=torch.float64, device=dev)
        else:
            du = ctf["defocus_u_angstrom"][i : i + batch_size].double()
            dv = ctf["defocus_v_angstrom"][i : i + batch_size].double()
            c = calculate_ctf_2d(
                defocus=(du + dv) / 2e4,
                astigmatism=(du - dv) / 2e4,
                astigmatism_angle=ctf["angle_deg"][i : i + batch_size].double(),
                voltage=float(ctf["voltage_kv"]),
                spherical_aberration=float(ctf["spherical_aberration_mm"]),
                amplitude_contrast=float(ctf["amplitude_contrast"]),
                phase_shift=0.0,
                pixel_size=float(ctf["pixel_size_angstrom"]),
                image_shape=(p, p),
                rfft=True,
                fftshift=False,
            ).double()
            c = torch.fft.fftshift(c, dim=-2).to(dev)
        both = torch.stack([ft * c, (c * c).to(ft.dtype)], dim=1).to(torch.complex64)
        acc = insert_slices(both, rot_t[i : i + batch_size], size_px=p)
        num = acc[0] if num is None else num + acc[0]
        den = acc[1].real if den is None else den + acc[1].real
    if num is None or den is None:
        raise ValueError("no particles to insert")
    return num, den


def wiener_map(
    numerator: torch.Tensor,
    denominator: torch.Tensor,
    *,
    box_px: int,
    wiener_constant: float = 0.01,
) -> torch.Tensor:
    """``(b, b, b)`` map from :func:`insert_particles` sums: ``num / (den + c)``, then unpadded.

    ``c = wiener_constant * mean(den)`` over the filled voxels (a flat 1/SNR); the trilinear
    interpolation's sinc^2 is divided out in real space, as torch-fourier-slice does.
    """
    p = numerator.shape[0]
    filled = denominator > 0
    reg = wiener_constant * float(denominator[filled].mean()) if bool(filled.any()) else 1.0
    vol_ft = numerator.to(torch.complex128) / (denominator.double() + reg)
    vol = torch.fft.irfftn(torch.fft.ifftshift(vol_ft, dim=(-3, -2)), dim=(-3, -2, -1), s=(p, p, p))
    vol = torch.fft.fftshift(vol, dim=(-3, -2, -1))
    lo = (p - box_px) // 2
    crop = (slice(lo, lo + box_px),) * 3
    return vol[crop] / separable_sinc2_correction((p, p, p), device=vol.device)[crop]


def _apply_signed_permutation(volume: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
    """``V(S r)`` for a signed permutation ``S`` (xyz), about voxel ``d // 2``: flips and a permute."""
    d = volume.shape[-1]
    dim = {0: 2, 1: 1, 2: 0}  # xyz component -> tensor dim (z, y, x)
    out = volume
    perm = [0, 1, 2]
    for i in range(3):
        j = int(op[i].abs().argmax())  # u_i = s_i r_j
        if float(op[i, j]) < 0:
            out = out.flip(dim[i])
            if d % 2 == 0:  # flip maps r -> -r - 1 about d // 2; roll restores -r (wrapping)
                out = out.roll(1, dim[i])
        perm[dim[j]] = dim[i]
    return out.permute(perm)


def symmetrise(volume: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """Average of a ``(d, d, d)`` map over point-group operators ``(s, 3, 3)`` about voxel ``d // 2``.

    ``V_sym(r) = mean_s V(S_s r)``. Signed-permutation operators (O, T, C2, C4, D2) are exact
    flips and axis permutations (the outermost plane wraps; mask it); others are trilinear
    resamplings.
    """
    d = volume.shape[-1]
    vol = volume.double()
    out = torch.zeros_like(vol)
    grid = None
    for op in operators.double().cpu():
        if geometry.is_signed_permutation(op.numpy()):
            out += _apply_signed_permutation(vol, op.round())
            continue
        if grid is None:
            r = torch.arange(d, device=vol.device, dtype=torch.float64) - d // 2
            z, y, x = torch.meshgrid(r, r, r, indexing="ij")
            grid = torch.stack([x, y, z], -1).reshape(-1, 3)
        src = grid @ op.to(vol.device).T  # S r, xyz
        coords = ((src + d // 2 + 0.5) / d * 2 - 1).reshape(1, d, d, d, 3)  # align_corners=False
        out += F.grid_sample(vol[None, None], coords, align_corners=False)[0, 0]
    return out / operators.shape[0]


def reconstruct(
    particles: torch.Tensor,
    rotation_matrices: torch.Tensor,
    *,
    ctf: dict[str, torch.Tensor | float] | None = None,
    symmetry: torch.Tensor | None = None,
    wiener_constant: float = 0.01,
    batch_size: int = 128,
    pad_factor: int = 2,
) -> torch.Tensor:
    """``(b, b, b)`` map from ``(n, b, b)`` particles with known poses (see :func:`insert_particles`).

    ``symmetry`` ``(s, 3, 3)`` (:func:`symmetry_matrices`) is imposed on the map (:func:`symmetrise`).
    """
    num, den = insert_particles(
        particles, rotation_matrices, ctf=ctf, batch_size=batch_size, pad_factor=pad_factor
    )
    vol = wiener_map(num, den, box_px=particles.shape[-1], wiener_constant=wiener_constant)
    return vol if symmetry is None else symmetrise(vol, symmetry)
