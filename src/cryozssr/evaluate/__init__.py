"""Evaluation with cryo-EM's own yardsticks: FRC against truth, CTF fit, oracle-pose 3D FSC.

Pure tensor core: :mod:`.frc` (registered FRC and its bands), :mod:`.spectrum` and :mod:`.ctf_fit`
(CTFFIND4-style fit on torch-ctf), :mod:`.reconstruct` and :mod:`.fsc` (Fourier insertion with
torch-fourier-slice, Wiener CTF correction, symmetry, vectorised FSC). :mod:`.collect` reads run and
simulation folders, :mod:`.compare` drives an evaluation, :mod:`.report` writes JSON, plots, HTML.
"""

from cryozssr.evaluate.ctf_fit import CtfFit, CtfFitConfig, Microscope, fit_ctf
from cryozssr.evaluate.frc import FRC_BANDS, FrcResult, register_and_frc
from cryozssr.evaluate.fsc import fsc_curve, resolution_at
from cryozssr.evaluate.reconstruct import (
    reconstruct,
    symmetrise,
    symmetry_matrices,
)
from cryozssr.geometry import relion_euler_to_matrix

__all__ = [
    "FRC_BANDS",
    "CtfFit",
    "CtfFitConfig",
    "FrcResult",
    "Microscope",
    "fit_ctf",
    "fsc_curve",
    "reconstruct",
    "register_and_frc",
    "relion_euler_to_matrix",
    "resolution_at",
    "symmetrise",
    "symmetry_matrices",
]
