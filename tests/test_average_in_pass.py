"""``misr`` and ``mmse`` form the dose-weighted LR average in their own pass over the frames (issue 14).

The pipeline then transforms every frame once for the average and the super-resolution. The
average must be the one :func:`~cryozssr.motion.averages.dose_weighted_average` gives: to float
rounding on a whole frame, and on tiles up to the periodic-tile error near the seams, small
against the average's own noise.
"""

from __future__ import annotations

import mrcfile
import pytest
import torch

from _synthetic import synthetic_movie
from cryozssr.baselines.misr import misr, misr_with_average
from cryozssr.baselines.mmse import mmse
from cryozssr.dose import Exposure
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.field import MotionField
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.movie import process_movie

EXPOSURE = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=2.0)


@pytest.fixture(scope="module")
def movie():
    lr, shifts, _ = synthetic_movie(size_hr=256, n_frames=12, counts_per_hr_px=2.0)
    return lr, shifts


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("shape", [(128, 128), (127, 125), (128, 97)])
@pytest.mark.parametrize("dose", [True, False])
def test_the_whole_frame_average_equals_dose_weighted_average(movie, shape, dose):
    lr, shifts = movie
    frames = lr[:, : shape[0], : shape[1]]
    motion = MotionField(shifts, shape)
    exposure = EXPOSURE if dose else Exposure(pixel_size_angstrom=1.0)
    image, average = misr_with_average(frames, motion, exposure=exposure)
    assert _relative(average, dose_weighted_average(frames, motion, exposure=exposure)) < 1e-6
    assert torch.equal(image, misr(frames, motion, exposure=exposure))  # the SR is untouched


def test_mmse_average_is_the_average_of_all_frames(movie):
    lr, shifts = movie
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    result = mmse(lr, motion, exposure=EXPOSURE)
    expected = dose_weighted_average(lr, motion, exposure=EXPOSURE)
    assert _relative(result.average, expected) < 1e-6


def test_the_tiled_average_differs_only_by_a_fraction_of_its_noise(movie):
    lr, shifts = movie
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    _, tiled = misr_with_average(lr, motion, exposure=EXPOSURE, tile_size_px=80, tile_overlap_px=32)
    whole = dose_weighted_average(lr, motion, exposure=EXPOSURE)
    halves = [
        dose_weighted_average(lr, motion, exposure=EXPOSURE, frame_indices=range(i, 12, 2))
        for i in (0, 1)
    ]
    noise = float((halves[0] - halves[1]).std()) / 2  # the average's own noise per pixel
    border = 8  # the drift wraps the frame edges differently on a tile and on the whole frame
    difference = (tiled - whole)[border:-border, border:-border]
    assert float(difference.std()) < 0.1 * noise
    assert float(difference.std()) > 0  # tiles are periodic models: not the whole-frame average


def test_the_pipeline_writes_the_same_average_whichever_method_forms_it(tmp_path):
    from cryozssr.io import write_mrc

    lr, _, _ = synthetic_movie(size_hr=128, n_frames=8, seed=3)
    path = write_mrc(tmp_path / "m.mrc", lr.numpy(), pixel_size_angstrom=1.5, mode="uint16")
    averages = {}
    for method in ("misr", "bilinear"):  # misr forms it in its pass; bilinear reads the stage's
        cfg = RunConfig(method=method, dose_per_frame_e_per_a2=1.0)
        result = process_movie(path, cfg, tmp_path / method, device="cpu")
        averages[method] = torch.from_numpy(mrcfile.read(result.avg_path).copy())
    assert _relative(averages["misr"], averages["bilinear"]) < 1e-6
