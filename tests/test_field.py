"""The shared motion model: interpolation of the local field, scaling, subsets, units."""

import pytest
import torch

from cryozssr.motion.field import MotionField


def test_global_only_shifts_are_the_same_everywhere_and_in_angstrom_xy():
    g = torch.tensor([[0.0, 0.0], [1.0, -2.0], [1.5, -3.0]])
    m = MotionField(g, (64, 48))
    at = m.shifts_at(torch.tensor([[0.0, 0.0], [40.0, 20.0]]))
    assert torch.equal(at[:, 0], g) and torch.equal(at[:, 1], g)
    # x along columns, y along rows: (y, x) = (1, -2) px at 1.5 A/px is x = -3 A, y = 1.5 A
    assert m.to_angstrom_xy(1.5)[1] == [-3.0, 1.5]


def test_local_field_is_exact_at_patch_centres_and_bilinear_between():
    t, gh, gw = 2, 2, 2
    loc = torch.zeros(t, gh, gw, 2)
    loc[1, 0, 0] = torch.tensor([1.0, 0.0])
    loc[1, 0, 1] = torch.tensor([3.0, 0.0])
    m = MotionField(torch.zeros(t, 2), (40, 40), loc)
    # patch centres of a 2x2 grid on 40 px: y, x = 9.5 and 29.5
    at = m.shifts_at(torch.tensor([[9.5, 9.5], [9.5, 29.5], [9.5, 19.5], [0.0, 0.0]]))
    torch.testing.assert_close(at[1, :, 0], torch.tensor([1.0, 3.0, 2.0, 1.0]))
    dense = m.local_field()
    assert dense is not None and dense.shape == (t, 40, 40, 2)
    torch.testing.assert_close(dense[1, 0, 0], at[1, 3])


def test_scaled_and_select():
    loc = torch.ones(3, 2, 2, 2)
    m = MotionField(torch.tensor([[0.0, 0.0], [0.5, 0.25], [1.0, 0.5]]), (10, 12), loc)
    hr = m.scaled(2)
    assert hr.image_shape == (20, 24)
    torch.testing.assert_close(hr.global_shifts_px[2], torch.tensor([2.0, 1.0]))
    assert hr.local_shifts_px is not None and float(hr.local_shifts_px.max()) == 2.0
    odd = m.select([1])
    assert odd.n_frames == 1 and torch.equal(odd.global_shifts_px[0], torch.tensor([0.5, 0.25]))


def test_a_crop_moves_each_pixel_as_the_whole_field_moves_it_there():
    # a field linear in y and x over a 5 x 7 grid on 100 x 140 px: bilinear is exact for it
    # inside the outer nodes, so the crop's field agrees with the whole's at every pixel there
    t, gh, gw, (h, w) = 3, 5, 7, (100, 140)
    cy = (torch.arange(gh) + 0.5) * h / gh - 0.5
    cx = (torch.arange(gw) + 0.5) * w / gw - 0.5
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    ramp = torch.arange(t, dtype=torch.float32)[:, None, None]
    loc = torch.stack([0.01 * xx * ramp, -0.02 * yy * ramp], dim=-1)
    g = torch.tensor([[0.0, 0.0], [0.4, -0.3], [0.9, -0.5]])
    whole = MotionField(g, (h, w), loc)
    box = [30, 40, 50, 60]
    crop = whole.crop(box)
    assert crop.image_shape == (50, 60) and torch.equal(crop.global_shifts_px, g)
    assert crop.local_shifts_px is not None
    # at least as dense: 50 of 100 rows with 5 nodes -> 3; 60 of 140 columns with 7 -> 3
    assert crop.local_shifts_px.shape == (t, 3, 3, 2)
    ys, xs = torch.meshgrid(torch.arange(50.0), torch.arange(60.0), indexing="ij")
    at_crop = torch.stack([ys.flatten(), xs.flatten()], -1)
    inner = crop.shifts_at(at_crop).reshape(t, 50, 60, 2)
    outer = whole.shifts_at(at_crop + torch.tensor([30.0, 40.0])).reshape(t, 50, 60, 2)
    # inside the crop's own outer nodes (rows 8-41, columns 10-49) the two are the same field
    torch.testing.assert_close(inner[:, 8:42, 10:50], outer[:, 8:42, 10:50], atol=1e-4, rtol=0)
    # global motion alone: the same shifts on the crop's shape; the whole frame is the field
    assert whole.crop([0, 0, h, w]) is whole
    plain = MotionField(g, (h, w)).crop(box)
    assert plain.local_shifts_px is None and plain.image_shape == (50, 60)


def test_a_crop_outside_the_frames_is_an_error():
    m = MotionField(torch.zeros(2, 2), (40, 40))
    for box in ([0, 0, 41, 40], [-1, 0, 10, 10], [35, 35, 10, 10], [0, 0, 0, 5]):
        with pytest.raises(ValueError, match="not inside the 40 x 40 frames"):
            m.crop(box)
