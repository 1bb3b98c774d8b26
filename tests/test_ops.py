"""The shared primitives: sign conventions and exact identities the whole pipeline relies on."""

import torch

from cryozssr.ops import box_sum, box_sum_adjoint, box_transfer_rfft, fourier_shift, normalise


def test_fourier_shift_moves_content_by_plus_shift():
    img = torch.zeros(16, 16)
    img[3, 4] = 1.0
    out = fourier_shift(img, torch.tensor([2.0, -3.0]))
    assert tuple((out == out.max()).nonzero()[0].tolist()) == (5, 1)


def test_fourier_shift_batched_equals_loop():
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(3, 12, 10, generator=g)
    shifts = torch.tensor([[0.3, -1.2], [2.5, 0.0], [-0.7, 0.9]])
    batched = fourier_shift(imgs, shifts)
    looped = torch.stack([fourier_shift(i, s) for i, s in zip(imgs, shifts, strict=True)])
    torch.testing.assert_close(batched, looped)


def test_box_sum_sums_blocks_and_keeps_integers():
    x = torch.arange(30, dtype=torch.int32).reshape(5, 6)  # odd height: last row dropped
    out = box_sum(x)
    assert not out.is_floating_point()
    assert out.tolist() == [
        [0 + 1 + 6 + 7, 2 + 3 + 8 + 9, 4 + 5 + 10 + 11],
        [12 + 13 + 18 + 19, 14 + 15 + 20 + 21, 16 + 17 + 22 + 23],
    ]


def test_box_sum_adjoint_is_the_adjoint():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 8, generator=g, dtype=torch.float64)
    b = torch.randn(4, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close((box_sum(a) * b).sum(), (a * box_sum_adjoint(b)).sum())


def test_box_transfer_is_the_dft_of_the_box_average():
    n = 32
    kernel = torch.zeros(n, n, dtype=torch.float64)
    kernel[:2, :2] = 0.25  # box_sum / 4 as a convolution on the fine grid
    expected = torch.fft.rfft2(kernel).abs()
    torch.testing.assert_close(
        box_transfer_rfft((n, n)).double().abs(), expected, atol=1e-6, rtol=0
    )
    # the box average of an image, sampled where box_sum samples it, has exactly that transfer
    g = torch.Generator().manual_seed(3)
    img = torch.randn(n, n, generator=g, dtype=torch.float64)
    conv = torch.fft.irfft2(torch.fft.rfft2(img) * torch.fft.rfft2(kernel), s=(n, n))
    torch.testing.assert_close(conv[1::2, 1::2], box_sum(img) / 4)


def test_normalise_round_trip():
    x = torch.tensor([1.0, 3.0, 5.0, 7.0])
    z, m, s = normalise(x)
    torch.testing.assert_close(z * s + m, x)
