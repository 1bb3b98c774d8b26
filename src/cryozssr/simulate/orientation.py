"""Uniformly random orientations and RELION's ZYZ Euler angles, in numpy for the simulator
(the definitions: :mod:`cryozssr.geometry`)."""

from __future__ import annotations

import numpy as np
import torch

from cryozssr.geometry import matrix_to_relion_euler as matrix_to_euler
from cryozssr.geometry import random_rotations, relion_euler_to_matrix

__all__ = ["euler_to_matrix", "matrix_to_euler", "random_rotations"]


def euler_to_matrix(rot_deg, tilt_deg, psi_deg) -> np.ndarray:
    """RELION Euler angles (degrees, arrays of equal shape ``(...)``) -> matrices ``(..., 3, 3)``."""
    angles = np.stack([np.asarray(v, dtype=np.float64) for v in (rot_deg, tilt_deg, psi_deg)], -1)
    return relion_euler_to_matrix(torch.from_numpy(angles)).numpy()
