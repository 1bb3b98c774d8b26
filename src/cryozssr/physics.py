"""Physical constants and the electron's wavelength and interaction constant: one place for every stage.

The wavelength is relativistic: ``lambda = h / sqrt(2 m0 e V (1 + e V / (2 m0 c^2)))``, i.e.
``12.2643 / sqrt(V (1 + 0.978476e-6 V))`` Angstrom for ``V`` in volts (``h / sqrt(2 m0 e)`` =
12.2643 A V^0.5; ``e / (2 m0 c^2)`` = 1 / (2 x 510998.95 eV) = 0.978476e-6 / V). Until issue 12
the CTF fit used 0.978466e-6, a typo in the fifth digit (its wavelength was ~1e-6 relative too long
at 300 kV); the simulator had the correct constant.
"""

from __future__ import annotations

import math

ELECTRON_REST_ENERGY_EV = 510998.95
"""``m0 c^2`` of the electron, eV (CODATA 2018)."""
WAVELENGTH_CONSTANT_ANGSTROM = 12.2643
"""``h / sqrt(2 m0 e)`` in A V^0.5."""
RELATIVISTIC_CORRECTION_PER_VOLT = 0.978476e-6
"""``e / (2 m0 c^2)`` per volt."""


def electron_wavelength_angstrom(voltage_kv: float) -> float:
    """Relativistic electron wavelength (A) at acceleration voltage ``voltage_kv``."""
    v = voltage_kv * 1e3
    return WAVELENGTH_CONSTANT_ANGSTROM / math.sqrt(v * (1 + RELATIVISTIC_CORRECTION_PER_VOLT * v))


def interaction_constant(voltage_kv: float) -> float:
    """sigma (rad / (V A)): phase shift per volt of potential per A of path (Kirkland 2020)."""
    v = voltage_kv * 1e3
    mc2 = ELECTRON_REST_ENERGY_EV
    return 2 * math.pi / (electron_wavelength_angstrom(voltage_kv) * v) * (mc2 + v) / (2 * mc2 + v)
