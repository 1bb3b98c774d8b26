"""Rotations in 3D: RELION's Euler angles, uniform random orientations, point-group symmetry.

RELION's Euler matrix ``A(rot, tilt, psi) = R_z(psi) R_y(tilt) R_z(rot)`` (passive rotations) maps
map coordinates to image coordinates: the particle image is the map rotated by ``A`` and projected
along z (Scheres 2012; ``Euler_angles2matrix`` in RELION's ``euler.cpp``). Point groups are in
RELION's standard orientation: ``Cn`` about z, ``Dn`` adds a 2-fold about x, ``T`` and ``O`` have
their 2-/4-folds on x, y and z (signed permutation matrices of determinant +1).
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import torch

from cryozssr.errors import OptionError


def relion_euler_to_matrix(angles_deg: torch.Tensor) -> torch.Tensor:
    """RELION's ``Euler_angles2matrix``: ``(..., 3)`` (rot, tilt, psi) in degrees -> ``(..., 3, 3)``
    float64."""
    a, b, g = torch.deg2rad(torch.as_tensor(angles_deg).double()).unbind(-1)
    ca, sa, cb, sb, cg, sg = a.cos(), a.sin(), b.cos(), b.sin(), g.cos(), g.sin()
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    rows = [
        [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
        [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
        [sc, ss, cb],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def matrix_to_relion_euler(matrices: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` -> RELION ``(rot, tilt, psi)`` in degrees ``(n, 3)``
    (``Euler_matrix2angles``)."""
    out = np.zeros((len(matrices), 3))
    eps = 16 * np.finfo(np.float32).eps
    for i, m in enumerate(np.asarray(matrices, dtype=np.float64)):
        abs_sb = np.hypot(m[0, 2], m[1, 2])
        if abs_sb > eps:
            gamma = np.arctan2(m[1, 2], -m[0, 2])
            alpha = np.arctan2(m[2, 1], m[2, 0])
            if abs(np.sin(gamma)) < eps:
                sign_sb = np.sign(-m[0, 2] / np.cos(gamma))
            else:
                sign_sb = np.sign(m[1, 2]) if np.sin(gamma) > 0 else -np.sign(m[1, 2])
            beta = np.arctan2(sign_sb * abs_sb, m[2, 2])
        elif m[2, 2] > 0:
            alpha, beta, gamma = 0.0, 0.0, np.arctan2(-m[1, 0], m[0, 0])
        else:
            alpha, beta, gamma = 0.0, np.pi, np.arctan2(m[1, 0], -m[0, 0])
        out[i] = np.rad2deg([alpha, beta, gamma])
    return out


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3, 3)`` rotation matrices uniform on SO(3) (normalised Gaussian quaternions)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def symmetry_matrices(symmetry: str) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` float64 (acting on xyz column vectors) of a point group.

    Supported: ``C1``, ``C<n>``, ``D<n>``, ``T``, ``O``; anything else raises
    :class:`~cryozssr.errors.OptionError`.
    """
    sym = symmetry.strip().upper()
    match = re.fullmatch(r"([CD])(\d+)", sym)
    if match:
        n = int(match.group(2))
        if n < 1:
            raise OptionError(f"invalid symmetry {symmetry!r}")
        mats = [_rotation_z(2 * math.pi * k / n) for k in range(n)]
        if match.group(1) == "D":
            flip_x = np.diag([1.0, -1.0, -1.0])  # 2-fold about x
            mats += [m @ flip_x for m in mats]
        return np.stack(mats)
    if sym in ("T", "O"):
        mats = []
        for perm in itertools.permutations(range(3)):
            p = np.zeros((3, 3))
            p[range(3), perm] = 1.0
            for signs in itertools.product((1.0, -1.0), repeat=3):
                m = np.diag(signs) @ p
                if round(np.linalg.det(m)) != 1:
                    continue
                if sym == "T" and round(np.linalg.det(p)) != 1:  # T: cyclic permutations only
                    continue
                mats.append(m)
        return np.stack(mats)
    raise OptionError(f"unsupported symmetry {symmetry!r}: use C1, C<n>, D<n>, T or O")


def is_signed_permutation(matrix: np.ndarray) -> bool:
    """Whether a rotation only permutes and negates axes (exact on a cubic voxel grid)."""
    m = np.round(matrix)
    return bool(np.allclose(matrix, m, atol=1e-9) and np.all(np.abs(m).sum(axis=0) == 1))
