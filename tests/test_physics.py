"""The one electron wavelength: relativistic, and the CODATA value torch-ctf computes."""

from __future__ import annotations

import pytest
from torch_ctf.ctf_aberrations import calculate_relativistic_electron_wavelength

from cryozssr.physics import electron_wavelength_angstrom


@pytest.mark.parametrize("voltage_kv", [100.0, 200.0, 300.0])
def test_wavelength_is_the_relativistic_codata_one(voltage_kv):
    codata = float(calculate_relativistic_electron_wavelength(voltage_kv * 1e3)) * 1e10
    assert electron_wavelength_angstrom(voltage_kv) == pytest.approx(codata, rel=5e-6)
    # the non-relativistic formula is 2-15% off at these voltages: the correction is there
    classical = 12.2643 / (voltage_kv * 1e3) ** 0.5
    assert classical / electron_wavelength_angstrom(voltage_kv) > 1.04


def test_300_kv_is_the_textbook_value():
    assert electron_wavelength_angstrom(300.0) == pytest.approx(0.019687, abs=1e-6)
