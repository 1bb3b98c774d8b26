"""Electron scattering factors and the solvent (vitreous ice) model (the electron's wavelength and
interaction constant: :mod:`cryozssr.physics`).

Elastic electron scattering factors of neutral atoms are the 5-Gaussian fits of Peng, Ren, Dudarev
& Whelan (1996), Acta Cryst. A52, 257-276 (fit range s = 0-2 1/A):
``f(s) = sum_i a_i exp(-b_i s^2)`` in Angstrom, with ``s = q / 2`` and ``q`` in cycles/A. A Gaussian
term ``a exp(-b q^2 / 4)`` is, in real space, a 3D Gaussian of standard deviation
``sqrt(b / (8 pi^2))`` A holding ``a`` A of scattering length; an isotropic B-factor adds to ``b``.
"""

from __future__ import annotations

import math

#: Peng et al. (1996) a_1..a_5 (A) and b_1..b_5 (A^2), neutral atoms.
PENG_1996: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "H": ((0.0349, 0.1201, 0.1970, 0.0573, 0.1195), (0.5347, 3.5867, 12.3471, 18.9525, 38.6269)),
    "C": ((0.0893, 0.2563, 0.7570, 1.0487, 0.3575), (0.2465, 1.7100, 6.4094, 18.6113, 50.2523)),
    "N": ((0.1022, 0.3219, 0.7982, 0.8197, 0.1715), (0.2451, 1.7481, 6.1925, 17.3894, 48.1431)),
    "O": ((0.0974, 0.2921, 0.6910, 0.6990, 0.2039), (0.2067, 1.3815, 4.6943, 12.7105, 32.4726)),
    "F": ((0.1083, 0.3175, 0.6487, 0.5846, 0.1421), (0.2057, 1.3439, 4.2788, 11.3932, 28.7881)),
    "NA": ((0.2142, 0.6853, 0.7692, 1.6589, 1.4482), (0.3334, 2.3446, 10.0830, 48.3037, 138.2700)),
    "MG": ((0.2314, 0.6866, 0.9677, 2.1882, 1.1339), (0.3278, 2.2720, 10.9241, 39.2898, 101.9748)),
    "P": ((0.2548, 0.6106, 1.4541, 2.3204, 0.8477), (0.2908, 1.8740, 8.5176, 24.3434, 63.2996)),
    "S": ((0.2497, 0.5628, 1.3899, 2.1865, 0.7715), (0.2681, 1.6711, 7.0267, 19.5377, 50.3888)),
    "CL": ((0.2443, 0.5397, 1.3919, 2.0197, 0.6621), (0.2468, 1.5242, 6.1537, 16.6687, 42.3086)),
    "K": ((0.4115, 1.4031, 2.2784, 2.6742, 2.2162), (0.3703, 3.3874, 13.1029, 68.9592, 194.4329)),
    "CA": ((0.4054, 1.3880, 2.1602, 3.7532, 2.2063), (0.3499, 3.0991, 11.9608, 53.9353, 142.3892)),
    "MN": ((0.3796, 1.2094, 1.7815, 2.5420, 1.5937), (0.2699, 2.0455, 7.4726, 31.0604, 91.5622)),
    "FE": ((0.3946, 1.2725, 1.7031, 2.3140, 1.4795), (0.2717, 2.0443, 7.6007, 29.9714, 86.2265)),
    "CO": ((0.4118, 1.3161, 1.6493, 2.1930, 1.2830), (0.2742, 2.0372, 7.7205, 29.9680, 84.9383)),
    "NI": ((0.3860, 1.1765, 1.5451, 2.0730, 1.3814), (0.2478, 1.7660, 6.3107, 25.2204, 74.3146)),
    "CU": ((0.4314, 1.3208, 1.5236, 1.4671, 0.8562), (0.2694, 1.9223, 7.3474, 28.9892, 90.6246)),
    "ZN": ((0.4288, 1.2646, 1.4472, 1.8294, 1.0934), (0.2593, 1.7998, 6.7500, 25.5860, 73.5284)),
    "SE": ((0.4477, 1.1678, 1.5843, 2.8087, 1.1956), (0.2405, 1.5442, 6.3231, 19.4610, 52.0233)),
}

#: Standard atomic masses (Da), for the solvent volume each atom displaces.
ATOMIC_MASS_DA: dict[str, float] = {
    "H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "F": 18.998, "NA": 22.990,
    "MG": 24.305, "P": 30.974, "S": 32.06, "CL": 35.45, "K": 39.098, "CA": 40.078,
    "MN": 54.938, "FE": 55.845, "CO": 58.933, "NI": 58.693, "CU": 63.546, "ZN": 65.38,
    "SE": 78.971,
}  # fmt: skip

#: ``h^2 / (2 pi m0 e)`` in V A^2: turns a scattering factor (A) into potential (V A^3).
POTENTIAL_PER_SCATTERING_V_A2 = 47.878
#: Protein volume per mass (A^3/Da), i.e. a partial specific volume of 0.73 cm^3/g.
PROTEIN_VOLUME_A3_PER_DA = 1.21
#: Number density of vitreous ice (0.94 g/cm^3), water molecules per A^3.
ICE_MOLECULES_PER_A3 = 0.0314
_O_H_DISTANCE_A = 0.957
_H_H_DISTANCE_A = 1.515


def scattering_factor(element: str, q_per_angstrom: float) -> float:
    """Peng (1996) elastic scattering factor (A) of a neutral atom at ``q`` (cycles/A)."""
    a, b = PENG_1996[element]
    return sum(ai * math.exp(-bi * q_per_angstrom**2 / 4) for ai, bi in zip(a, b, strict=True))


def water_scattering_squared(q_per_angstrom: float) -> float:
    """``|f_H2O(q)|^2`` (A^2) of one water molecule: O and two H with their intramolecular interference.

    Rotationally averaged (Debye formula) with O-H 0.957 A and H-H 1.515 A.
    """
    fo = scattering_factor("O", q_per_angstrom)
    fh = scattering_factor("H", q_per_angstrom)

    def j0(r: float) -> float:
        x = 2 * math.pi * q_per_angstrom * r
        return 1.0 if x < 1e-8 else math.sin(x) / x

    return fo**2 + 2 * fh**2 + 4 * fo * fh * j0(_O_H_DISTANCE_A) + 2 * fh**2 * j0(_H_H_DISTANCE_A)


def ice_mean_inner_potential_volt() -> float:
    """Mean inner potential of vitreous ice (V) in the independent-atom model (~4.6 V)."""
    f0 = scattering_factor("O", 0.0) + 2 * scattering_factor("H", 0.0)
    return POTENTIAL_PER_SCATTERING_V_A2 * ICE_MOLECULES_PER_A3 * f0


def ice_structure_factor(q_per_angstrom: float) -> float:
    """Approximate structure factor S(q) of vitreous (low-density amorphous) ice.

    ``S(0) ~ 0.06`` (low compressibility suppresses long-wavelength density fluctuations), a first
    peak of height ~2 at q = 0.27 1/A (the 3.7 A "ice ring"), and S -> 1 at high q. A smooth
    model of the measured curve, not a fit.
    """
    q = q_per_angstrom
    return (
        1.0
        - 0.94 * math.exp(-((q / 0.25) ** 2))
        + 1.3 * math.exp(-((q - 0.27) ** 2) / (2 * 0.025**2))
    )
