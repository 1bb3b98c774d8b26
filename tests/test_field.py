"""The shared motion model: interpolation of the local field, scaling, subsets, units."""

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
