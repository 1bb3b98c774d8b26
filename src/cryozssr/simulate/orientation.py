"""Uniformly random orientations and RELION's ZYZ Euler angles.

RELION's Euler matrix ``A(rot, tilt, psi) = R_z(psi) R_y(tilt) R_z(rot)`` (passive rotations) maps
map coordinates to image coordinates: the particle image is the map rotated by ``A`` and projected
along z (Scheres 2012; ``Euler_angles2matrix`` in RELION's ``euler.cpp``).
"""

from __future__ import annotations

import numpy as np


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


def euler_to_matrix(rot_deg, tilt_deg, psi_deg) -> np.ndarray:
    """RELION Euler angles (degrees, arrays of equal shape ``(...)``) -> matrices ``(..., 3, 3)``."""
    a, b, g = (np.deg2rad(np.asarray(v, dtype=np.float64)) for v in (rot_deg, tilt_deg, psi_deg))
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.stack(
        [
            np.stack([cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb], -1),
            np.stack([-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb], -1),
            np.stack([sc, ss, cb], -1),
        ],
        axis=-2,
    )


def matrix_to_euler(matrices: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` -> RELION ``(rot, tilt, psi)`` in degrees ``(n, 3)``."""
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
