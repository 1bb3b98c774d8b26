"""The fast alias solve (issue 14) gives what the per-frame outer-product solve gave, to 1e-4.

The reference is a frozen copy of the implementation before issue 14 (``tests/_reference_misr.py``).
"""

from __future__ import annotations

import pytest
import torch

from _reference_misr import reference_explicit, reference_misr
from _synthetic import synthetic_movie
from cryozssr.baselines import misr
from cryozssr.baselines._alias_solve import ldl_solve
from cryozssr.baselines.config import MmseConfig
from cryozssr.baselines.misr import RadialSpectrum
from cryozssr.baselines.mmse import mmse as explicit_super_resolve
from cryozssr.dose import Exposure
from cryozssr.motion.field import MotionField

EXPOSURE = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=2.0)
TILES = dict(tile_size_px=32, tile_overlap_px=8)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module")
def movie():
    lr, shifts, _ = synthetic_movie(size_hr=128, n_frames=10, counts_per_hr_px=4.0)
    local = 0.3 * torch.randn(10, 3, 3, 2, generator=torch.Generator().manual_seed(3))
    local[0] = 0
    return lr, shifts, local


@pytest.mark.parametrize(
    "case",
    ["whole", "whole-no-dose", "tiles", "tiles-no-dose", "local", "mmse-tiles", "odd-shape"],
)
def test_misr_equals_the_reference(movie, case):
    lr, shifts, local = movie
    if case == "odd-shape":
        lr = lr[:, :45, :39]
    frames = lr.float()
    motion = MotionField(shifts, tuple(frames.shape[-2:]), local if case == "local" else None)
    options: dict = {} if "no-dose" in case else {"exposure": EXPOSURE}
    if case in ("tiles", "tiles-no-dose", "local", "mmse-tiles", "odd-shape"):
        options |= TILES
    if case == "mmse-tiles":
        power = 10 * torch.exp(-torch.arange(200.0, dtype=torch.float64) / 40) + 0.01
        options["signal"] = RadialSpectrum(power, 1.0 / 128)
    fast, reference = misr(frames, motion, **options), reference_misr(frames, motion, **options)
    assert _relative(fast, reference) < 1e-4


@pytest.mark.parametrize("local_motion", [False, True])
def test_explicit_regime_equals_the_reference(movie, local_motion):
    lr, shifts, local = movie
    motion = MotionField(shifts, tuple(lr.shape[-2:]), local if local_motion else None)
    # the reference assumed Poisson noise; the measured noise spectrum (issue 13) is tested apart
    poisson = MmseConfig(noise="poisson")
    result = explicit_super_resolve(lr, motion, exposure=EXPOSURE, config=poisson)
    image, spectrum, _ = reference_explicit(lr, motion, exposure=EXPOSURE)
    assert _relative(result.image, image) < 1e-4
    assert _relative(result.spectrum.power_per_px, spectrum.power_per_px) < 1e-4


def test_batched_hermitian_solve_equals_linalg_solve():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(50, 4, 4, dtype=torch.complex128, generator=gen)
    gram = a.mH @ a
    diagonal = torch.rand(50, 4, dtype=torch.float64, generator=gen) + 0.1
    rhs = torch.randn(50, 4, dtype=torch.complex128, generator=gen)
    upper = {(i, j): gram[:, i, j] for i in range(4) for j in range(i, 4)}
    x, inverse = ldl_solve(upper, list(diagonal.T), list(rhs.T), inverse_diagonal=True)
    system = gram + torch.diag_embed(diagonal.to(gram.dtype))
    assert torch.allclose(torch.stack(x, -1), torch.linalg.solve(system, rhs), atol=1e-10)
    expected = torch.linalg.inv(system).diagonal(dim1=-2, dim2=-1).real
    assert inverse is not None and torch.allclose(torch.stack(inverse, -1), expected, atol=1e-10)
