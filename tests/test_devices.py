"""Device policy (issue 14): every path follows its input's device and creates no tensor elsewhere.

Without a GPU, running a path with CPU inputs under ``torch.device("meta")`` makes every tensor
created without an explicit ``device=`` a meta tensor, which fails as soon as it meets the CPU data:
it catches the tensors a CUDA run would have made on the CPU. With a GPU the same paths run on it.
"""

from __future__ import annotations

import pytest
import torch

from _synthetic import synthetic_movie
from cryozssr.baselines import misr, shift_add
from cryozssr.baselines.misr import misr_with_average
from cryozssr.baselines.mmse import mmse as explicit_super_resolve
from cryozssr.dose import Exposure
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField

EXPOSURE = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=2.0)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def movie():
    lr, shifts, _ = synthetic_movie(size_hr=128, n_frames=8)
    local = 0.2 * torch.randn(8, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    local[0] = 0
    return lr, shifts, local


def _paths(lr, shifts, local):
    shape = tuple(lr.shape[-2:])
    tiles = dict(tile_size_px=32, tile_overlap_px=8)
    return {
        "misr-tiles": lambda: misr(
            lr.float(), MotionField(shifts, shape), exposure=EXPOSURE, **tiles
        ),
        "misr-local": lambda: misr(
            lr.float(), MotionField(shifts, shape, local), exposure=EXPOSURE
        ),
        "misr-average-tiles": lambda: misr_with_average(
            lr, MotionField(shifts, shape), exposure=EXPOSURE, **tiles
        ),
        "explicit": lambda: explicit_super_resolve(
            lr, MotionField(shifts, shape), exposure=EXPOSURE
        ),
        "shift-add-local": lambda: shift_add(
            lr.float(), MotionField(shifts, shape, local), exposure=EXPOSURE
        ),
        "motion-patches": lambda: estimate_motion(lr.float(), config=MotionConfig(patches=(2, 2))),
        "local-field": lambda: MotionField(shifts, shape, local).local_field(),
    }


@pytest.mark.parametrize(
    "path",
    [
        "misr-tiles",
        "misr-average-tiles",
        "misr-local",
        "explicit",
        "shift-add-local",
        "motion-patches",
        "local-field",
    ],
)
def test_no_tensor_is_made_off_the_inputs_device(movie, path):
    run = _paths(*movie)[path]
    with torch.device("meta"):  # tensors made without device= land on meta and clash with the CPU
        out = run()
    for one in out if isinstance(out, tuple) else (out,):
        tensor = one.image if hasattr(one, "image") else getattr(one, "global_shifts_px", one)
        assert tensor.device.type == "cpu" and bool(torch.isfinite(tensor).all())


def test_the_meta_check_catches_a_tensor_made_on_the_default_device(movie):
    lr, _, _ = movie
    with torch.device("meta"), pytest.raises((RuntimeError, NotImplementedError)):
        float((lr.float() + torch.ones(lr.shape[-2:])).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_methods_follow_the_input_device_and_agree_with_the_cpu(movie, device):
    lr, shifts, local = movie
    shape = tuple(lr.shape[-2:])
    on = torch.device(device)
    motion = MotionField(shifts.to(on), shape, local.to(on))
    sr = misr(lr.float().to(on), motion, exposure=EXPOSURE)
    cpu = misr(lr.float(), MotionField(shifts, shape, local), exposure=EXPOSURE)
    assert sr.device.type == on.type
    assert float((sr.cpu() - cpu).norm() / cpu.norm()) < 1e-4
    field = motion.local_field()
    assert field is not None and field.device.type == on.type
