"""The specimen's electrostatic potential from its atoms, and its projections.

Every atom contributes its Peng (1996) scattering factor blurred by its B-factor (plus an optional
extra B), minus the vitreous ice it displaces (Fraser, MacRae & Suzuki 1978: a Gaussian holding the
atom's share of the protein volume, 1.21 A^3/Da x mass, filled with ice of the independent-atom
model). The potential (volts) is integrated over every voxel of a grid ``oversample`` times finer
than the HR pixel (erf-integrated Gaussians, so narrow atoms do not alias), built for the asymmetric
unit and symmetrised exactly on the grid when the group's rotations are signed permutations (T, O,
C2, C4, D2, D4), else on the atoms.

Projections are central slices (Fourier slice theorem) of the 2x zero-padded volume's DFT, sampled
by trilinear interpolation on the unpadded box's frequency grid, corrected for the interpolation
(torch-fourier-slice's sinc^2) and for the voxel integration, and returned as the phase shift (rad)
the specimen imparts: ``sigma * integral V dz``.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch_fourier_slice.volume_utils import separable_sinc2_correction
from torch_image_interpolation import sample_image_3d

from cryozssr.geometry import is_signed_permutation, symmetry_matrices
from cryozssr.physics import interaction_constant
from cryozssr.simulate.atoms import Atoms, apply_symmetry, read_atoms
from cryozssr.simulate.scattering import (
    ATOMIC_MASS_DA,
    ICE_MOLECULES_PER_A3,
    PENG_1996,
    POTENTIAL_PER_SCATTERING_V_A2,
    PROTEIN_VOLUME_A3_PER_DA,
    scattering_factor,
)

log = logging.getLogger(__name__)
_TAIL_SIGMAS = 4.0
_CHUNK_ATOMS = 384


@dataclass(frozen=True, eq=False)
class Potential:
    """Coulomb potential of one particle on a cubic grid, centred on its symmetry centre.

    Attributes
    ----------
    volume_volt:
        ``(n, n, n)`` float32 ``(z, y, x)``: potential (V) averaged over each voxel, minus the ice
        the particle displaces. The symmetry centre is voxel ``(n//2, n//2, n//2)``.
    voxel_size_angstrom:
        ``pixel_size_hr_angstrom / oversample``.
    radius_angstrom:
        Largest distance of an atom from the centre.
    """

    volume_volt: torch.Tensor
    voxel_size_angstrom: float
    pixel_size_hr_angstrom: float
    oversample: int
    radius_angstrom: float
    symmetry: str
    n_atoms: int
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def box_size(self) -> int:
        return int(self.volume_volt.shape[-1])

    def hr_map(self) -> torch.Tensor:
        """The potential (V) sampled at the HR pixel: ``(n/s, n/s, n/s)``, band-limited (Fourier crop).

        The centre stays at voxel ``n/s // 2`` (the RELION/MRC box-centre convention).
        """
        s = self.oversample
        n = self.box_size
        m = n // s
        dft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(self.volume_volt)))
        k = torch.fft.fftshift(torch.fft.fftfreq(n, device=dft.device))
        box = torch.sinc(k)
        dft = dft / (box[:, None, None] * box[None, :, None] * box[None, None, :])
        lo = n // 2 - m // 2
        crop = dft[lo : lo + m, lo : lo + m, lo : lo + m]
        out = torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(crop))).real
        return (out / s**3).to(torch.float32)

    def project(self, rotation_matrices: torch.Tensor, *, voltage_kv: float) -> torch.Tensor:
        """Phase images ``(..., n, n)`` (rad, fine grid) of the particle rotated by ``(..., 3, 3)``.

        ``rotation_matrices`` rotate the particle (xyz column vectors) into the image frame, i.e.
        RELION's Euler matrix ``A``: the image shows the map sampled at ``A^T r`` and projected on z.
        The particle's centre is pixel ``(n//2, n//2)``.
        """
        dft = self._cache.get("dft")
        if dft is None:
            dft = _projection_dft(self.volume_volt)
            self._cache["dft"] = dft
        n = self.box_size
        big = dft.shape[0]
        # central slice on the unpadded box's rfft grid (every other sample of the padded DFT:
        # the DFT of the projection wrapped to n, exact since the particle fits in the box)
        ky = torch.fft.fftfreq(n, device=dft.device)
        kx = torch.fft.rfftfreq(n, device=dft.device)
        plane = torch.stack(
            [
                kx[None, :].expand(n, -1),
                ky[:, None].expand(-1, kx.shape[0]),
                torch.zeros(n, kx.shape[0], device=dft.device),
            ],
            dim=-1,
        )  # (n, n//2+1, xyz)
        # the image samples the map at A^T r, so its DFT samples the map's DFT at A^T k
        rot = rotation_matrices.to(device=dft.device, dtype=torch.float32)
        k3 = torch.einsum("...ji,hwj->...hwi", rot, plane)  # A^T k, (..., n, n//2+1, xyz)
        conj = k3[..., 0] < 0
        k3 = torch.where(conj[..., None], -k3, k3)
        coords = torch.stack(
            [k3[..., 2] * big + big // 2, k3[..., 1] * big + big // 2, k3[..., 0] * big], dim=-1
        )
        samples = sample_image_3d(dft, coords, interpolation="trilinear")
        samples = torch.where(conj, samples.conj(), samples)
        proj = torch.fft.fftshift(torch.fft.irfft2(samples, s=(n, n)), dim=(-2, -1))
        return proj * (self.voxel_size_angstrom * interaction_constant(voltage_kv))


def _projection_dft(volume: torch.Tensor) -> torch.Tensor:
    """2x zero-padded, fftshifted rfft of the volume, divided by the trilinear-interpolation and
    voxel-integration transfer functions (the input torch-fourier-slice expects)."""
    n = volume.shape[-1]
    p = n // 2
    vol = F.pad(volume, [p] * 6)
    big = vol.shape[-1]
    vol = vol / separable_sinc2_correction(tuple(vol.shape), device=vol.device)
    dft = torch.fft.rfftn(torch.fft.ifftshift(vol, dim=(-3, -2, -1)), dim=(-3, -2, -1))
    del vol
    dft = torch.fft.fftshift(dft, dim=(-3, -2))
    # voxel integration: a box of one (unpadded) voxel, transfer sinc(k) per axis in cycles/voxel
    k = torch.sinc(torch.fft.fftshift(torch.fft.fftfreq(big, device=dft.device)))
    kx = torch.sinc(torch.fft.rfftfreq(big, device=dft.device))
    dft /= k[:, None, None] * k[None, :, None] * kx[None, None, :]
    return dft


def _gaussian_terms(atoms: Atoms, *, extra_bfactor_a2: float, solvent: bool):
    """Per-atom Gaussian amplitudes ``(N, T)`` (A of scattering length) and ``b`` widths (A^2)."""
    a = np.array([PENG_1996[e][0] for e in atoms.elements])  # (N, 5)
    b = np.array([PENG_1996[e][1] for e in atoms.elements])
    bfac = np.clip(atoms.b_factor_a2, 0.0, None)[:, None] + extra_bfactor_a2
    amp = a * atoms.occupancy[:, None]
    width = b + bfac
    if solvent:
        mass = np.array([ATOMIC_MASS_DA[e] for e in atoms.elements])
        if "H" not in atoms.elements:
            mass = mass * 1.08  # models without hydrogens: ~8% of a protein's mass is hydrogen
        volume = PROTEIN_VOLUME_A3_PER_DA * mass
        f_water = scattering_factor("O", 0.0) + 2 * scattering_factor("H", 0.0)
        amp_solvent = -ICE_MOLECULES_PER_A3 * f_water * volume * atoms.occupancy
        width_solvent = 4 * math.pi * volume ** (2 / 3)  # Fraser 1978: exp(-pi v^(2/3) q^2)
        amp = np.concatenate([amp, amp_solvent[:, None]], axis=1)
        width = np.concatenate([width, width_solvent[:, None]], axis=1)
    return amp, width


def _splat(
    volume: torch.Tensor,
    centres_vox: torch.Tensor,
    sigma_vox: torch.Tensor,
    weight: torch.Tensor,
) -> None:
    """Add voxel-averaged 3D Gaussians into ``volume`` ``(n, n, n)`` in place.

    ``centres_vox`` ``(N, 3)`` (z, y, x) in voxels; ``sigma_vox`` ``(N, T)``; ``weight`` ``(N, T)``
    is each term's integral divided by the voxel volume.
    """
    n = volume.shape[-1]
    r = math.ceil(_TAIL_SIGMAS * float(sigma_vox.max()))
    offsets = torch.arange(2 * r + 2, dtype=torch.float64, device=volume.device)
    flat = volume.view(-1)
    for start in range(0, centres_vox.shape[0], _CHUNK_ATOMS):
        c = centres_vox[start : start + _CHUNK_ATOMS]
        s = sigma_vox[start : start + _CHUNK_ATOMS]
        w = weight[start : start + _CHUNK_ATOMS]
        base = torch.round(c).long() - r  # (N, 3)
        edges = base[:, :, None] + offsets - 0.5 - c[:, :, None]  # (N, 3, 2r+2)
        z = edges[:, None] / (s[:, :, None, None] * math.sqrt(2.0))  # (N, T, 3, 2r+2)
        prof = torch.diff(0.5 * torch.erf(z), dim=-1).float()  # (N, T, 3, 2r+1)
        block = torch.einsum(
            "nt,nti,ntj,ntk->nijk", w.float(), prof[:, :, 0], prof[:, :, 1], prof[:, :, 2]
        )
        idx = torch.arange(2 * r + 1, device=volume.device)
        iz = (base[:, 0, None] + idx)[:, :, None, None]
        iy = (base[:, 1, None] + idx)[:, None, :, None]
        ix = (base[:, 2, None] + idx)[:, None, None, :]
        flat.index_add_(0, ((iz * n + iy) * n + ix).reshape(-1), block.reshape(-1))


def _symmetrise_on_grid(volume: torch.Tensor, matrices: np.ndarray) -> torch.Tensor:
    """Sum of the volume rotated by each signed-permutation matrix about voxel ``n//2``."""
    n = volume.shape[-1]
    c = n // 2
    rel = torch.arange(n, device=volume.device) - c
    out_xyz = (rel[None, None, :], rel[None, :, None], rel[:, None, None])  # x, y, z broadcast
    total = torch.zeros_like(volume)
    for m in matrices:
        mt = np.round(m.T).astype(int)  # input coords = M^T @ output coords
        src = []
        for i in range(3):
            j = int(np.flatnonzero(mt[i])[0])
            src.append((mt[i, j] * out_xyz[j] + c) % n)
        total += volume[src[2], src[1], src[0]]
    return total


def potential_from_atoms(
    atoms: Atoms,
    *,
    symmetry: str = "C1",
    pixel_size_hr_angstrom: float,
    oversample: int = 2,
    extra_bfactor_a2: float = 0.0,
    solvent: bool = True,
    device: torch.device | str | None = None,
) -> Potential:
    """Build the particle's :class:`Potential` from its asymmetric unit and point group."""
    matrices = symmetry_matrices(symmetry)
    on_grid = all(is_signed_permutation(m) for m in matrices)
    unit = atoms if on_grid else apply_symmetry(atoms, matrices)
    full = apply_symmetry(atoms, matrices) if on_grid else unit
    rel = full.xyz_angstrom - full.centre_angstrom
    radius = float(np.sqrt((rel**2).sum(axis=1)).max())

    amp, width = _gaussian_terms(unit, extra_bfactor_a2=extra_bfactor_a2, solvent=solvent)
    voxel = pixel_size_hr_angstrom / oversample
    sigma_vox = np.sqrt(width / (8 * math.pi**2)) / voxel
    margin = _TAIL_SIGMAS * float(sigma_vox.max()) * voxel + 2 * voxel
    half_hr = math.ceil((radius + margin) / pixel_size_hr_angstrom) + 1
    n = 2 * half_hr * oversample
    centres = (unit.xyz_angstrom - unit.centre_angstrom) / voxel + n // 2
    centres_zyx = torch.as_tensor(centres[:, ::-1].copy(), dtype=torch.float64, device=device)
    weight = torch.as_tensor(amp * POTENTIAL_PER_SCATTERING_V_A2 / voxel**3, device=device)
    volume = torch.zeros((n, n, n), dtype=torch.float32, device=device)
    _splat(volume, centres_zyx, torch.as_tensor(sigma_vox, device=device), weight)
    if on_grid and len(matrices) > 1:
        volume = _symmetrise_on_grid(volume, matrices)
    log.debug("potential: %d atoms, box %d at %.3f A", len(full.elements), n, voxel)
    return Potential(
        volume_volt=volume,
        voxel_size_angstrom=voxel,
        pixel_size_hr_angstrom=pixel_size_hr_angstrom,
        oversample=oversample,
        radius_angstrom=radius,
        symmetry=symmetry.upper(),
        n_atoms=len(full.elements),
    )


def default_model_path() -> Path:
    """The shipped model: one chain of human apoferritin (PDB 7A4M) in its map's box (use ``O``)."""
    from importlib.resources import files

    return Path(str(files("cryozssr") / "data" / "apoferritin" / "7A4M_chainA_box.pdb"))


@functools.lru_cache(maxsize=4)
def build_potential(
    model_path: str | Path | None,
    symmetry: str,
    pixel_size_angstrom: float,
    *,
    oversample: int = 2,
    extra_bfactor_a2: float = 0.0,
    solvent: bool = True,
) -> Potential:
    """Read a model and build its :class:`Potential` (memoised: one build per dataset).

    ``model_path=None`` is the shipped apoferritin chain; ``pixel_size_angstrom`` is the HR pixel.
    """
    path = default_model_path() if model_path is None else Path(model_path)
    return potential_from_atoms(
        read_atoms(path),
        symmetry=symmetry,
        pixel_size_hr_angstrom=pixel_size_angstrom,
        oversample=oversample,
        extra_bfactor_a2=extra_bfactor_a2,
        solvent=solvent,
    )
