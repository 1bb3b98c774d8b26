"""Atomic models: reading PDB/mmCIF (gemmi) and point-group symmetry.

Symmetry groups follow RELION's conventions: ``C<n>`` about z, ``D<n>`` adds a 2-fold about x,
``T`` and ``O`` have their 2-folds (and, for O, 4-folds) along x, y and z, so all of their
rotations are signed permutation matrices. The group acts about the model's symmetry centre: the
centre of its CRYST1 box when the file has one (as maps deposited with their model do), else the
centroid of the atoms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryozssr.errors import InputError
from cryozssr.simulate.scattering import PENG_1996

_WATER_NAMES = {"HOH", "WAT", "DOD", "H2O"}


@dataclass(frozen=True)
class Atoms:
    """Atoms of one model (asymmetric unit).

    ``xyz_angstrom`` ``(n, 3)`` float64; ``elements`` upper-case symbols; ``b_factor_a2`` and
    ``occupancy`` ``(n,)``; ``centre_angstrom`` ``(3,)`` symmetry centre (x, y, z).
    """

    xyz_angstrom: np.ndarray
    elements: tuple[str, ...]
    b_factor_a2: np.ndarray
    occupancy: np.ndarray
    centre_angstrom: np.ndarray


def read_atoms(path: str | Path) -> Atoms:
    """Read the first model of a PDB or mmCIF file, without waters.

    Raises :class:`~cryozssr.errors.InputError` for a missing or unreadable file, a file without
    atoms, or elements without tabulated scattering factors.
    """
    import gemmi

    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"cannot read atomic model {path}: {exc}") from None
    xyz, elements, bfac, occ = [], [], [], []
    if len(structure) > 0:
        for chain in structure[0]:
            for residue in chain:
                if residue.name in _WATER_NAMES:
                    continue
                for atom in residue:
                    p = atom.pos
                    xyz.append((p.x, p.y, p.z))
                    elements.append(atom.element.name.upper())
                    bfac.append(atom.b_iso)
                    occ.append(atom.occ)
    if not xyz:
        raise InputError(f"no atoms in model file {path}")
    unknown = sorted(set(elements) - set(PENG_1996))
    if unknown:
        raise InputError(f"{path}: no scattering factors for element(s) {', '.join(unknown)}")
    xyz_a = np.asarray(xyz, dtype=np.float64)
    cell = structure.cell
    if cell.a > 10 and cell.b > 10 and cell.c > 10:
        centre = np.array([cell.a, cell.b, cell.c], dtype=np.float64) / 2
    else:
        centre = xyz_a.mean(axis=0)
    return Atoms(
        xyz_a, tuple(elements), np.asarray(bfac, np.float64), np.asarray(occ, np.float64), centre
    )


def apply_symmetry(atoms: Atoms, matrices: np.ndarray) -> Atoms:
    """All symmetry copies of ``atoms`` (rotated about its centre), concatenated."""
    rel = atoms.xyz_angstrom - atoms.centre_angstrom
    xyz = np.concatenate([rel @ m.T for m in matrices]) + atoms.centre_angstrom
    k = len(matrices)
    return Atoms(
        xyz,
        atoms.elements * k,
        np.tile(atoms.b_factor_a2, k),
        np.tile(atoms.occupancy, k),
        atoms.centre_angstrom,
    )
