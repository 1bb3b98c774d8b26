"""Cryo-ZSSR building blocks: network, Lanczos shift, pairs, lr rule, ensemble, tiling, back-projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryozssr.errors import OptionError
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, box_sum_adjoint, fourier_shift, rfft_radius
from cryozssr.zssr import ZssrConfig, config_from_preset
from cryozssr.zssr.inference import back_project, self_ensemble, tiled_predict
from cryozssr.zssr.losses import fourier_loss, total_variation
from cryozssr.zssr.network import SRNet, lanczos_shift, upsample2x
from cryozssr.zssr.pairs import (
    TrainingPair,
    dihedral,
    dihedral_inverse,
    random_crops,
    training_pair,
)
from cryozssr.zssr.train import Trainer, loss_plateaued


def _smooth(h: int, w: int, *, seed: int = 0, cutoff: float = 0.15) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft2(torch.randn(h, w, generator=g, dtype=torch.float64))
    img = torch.fft.irfft2(spec * torch.exp(-((rfft_radius((h, w)) / cutoff) ** 2)), s=(h, w))
    return (img / img.std()).float()


def _tiny_net(seed: int = 0) -> SRNet:
    """A small SRNet with random weights everywhere (the decoder starts at zero otherwise)."""
    torch.manual_seed(seed)
    net = SRNet(channels=8, res_blocks=1).eval()
    torch.nn.init.normal_(net.decoder.weight, std=0.1)
    return net


def test_untrained_srnet_returns_the_upsampled_average_non_square():
    torch.manual_seed(0)
    net = SRNet(channels=8, res_blocks=1).eval()
    x = torch.stack([_smooth(20, 36, seed=s) for s in range(3)])[None]  # (1, 3, 20, 36)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, 1, 40, 72)
    torch.testing.assert_close(out[0, 0], upsample2x(x[0]).mean(0))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_srnet_uses_every_input_for_odd_k(k):
    net = _tiny_net()
    x = torch.stack([_smooth(16, 24, seed=s) for s in range(k)])[None]
    with torch.no_grad():
        base = net(x)
        for i in range(k):
            y = x.clone()
            y[0, i] += _smooth(16, 24, seed=100 + i)
            # the learned residual (not just the average term) must change: none is dropped
            change = net(y) - base - upsample2x((y - x)[0]).mean(0)
            assert float(change.abs().max()) > 1e-4


def test_bilinear_upsampling_follows_the_grid_convention():
    # a ramp lands on HR pixel centres 2I + 0.5 -/+ 0.5: its 2x2 averages give the ramp back and
    # the HR samples sit at LR coordinates I - 1/4 and I + 1/4
    y, x = torch.meshgrid(torch.arange(12.0), torch.arange(20.0), indexing="ij")
    lr = 0.3 * y - 0.7 * x
    up = upsample2x(lr)
    torch.testing.assert_close((box_sum(up) / 4)[1:-1, 1:-1], lr[1:-1, 1:-1])
    torch.testing.assert_close(up[4, 5], torch.tensor(0.3 * 1.75 - 0.7 * 2.25))


def test_lanczos_shift_matches_fourier_shift_on_band_limited_image():
    img = _smooth(48, 40, seed=1, cutoff=0.12)
    shifts = torch.tensor([[0.3, -0.7], [-1.4, 0.55]])
    out = lanczos_shift(img.expand(2, 1, -1, -1), shifts)
    for b in range(2):
        ref = fourier_shift(img, shifts[b])
        err = (out[b, 0] - ref)[6:-6, 6:-6].abs().max()
        assert float(err) < 0.02 * float(img.abs().max())
    torch.testing.assert_close(lanczos_shift(img[None, None], torch.zeros(1, 2))[0, 0], img)


def test_lanczos_shift_is_differentiable_in_the_shift():
    img = _smooth(32, 32, seed=2)
    target = fourier_shift(img, torch.tensor([0.4, -0.3]))
    shift = torch.zeros(1, 2, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss = ((lanczos_shift(img[None, None], shift)[0, 0] - target)[4:-4, 4:-4] ** 2).mean()
        loss.backward()
        opt.step()
    torch.testing.assert_close(shift.detach()[0], torch.tensor([0.4, -0.3]), atol=0.03, rtol=0)


def test_dihedral_inverse_undoes_each_transform():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    outs = {dihedral(x, d).flatten().tolist().__repr__() for d in range(8)}
    assert len(outs) == 8  # eight distinct transforms
    for d in range(8):
        torch.testing.assert_close(dihedral_inverse(dihedral(x, d), d), x)


def test_ensemble_of_identity_network_gives_back_its_input():
    x = torch.stack([_smooth(12, 20, seed=s) for s in range(3)])

    def identity_sr(inputs: torch.Tensor) -> torch.Tensor:
        return box_sum_adjoint(inputs[0])  # equivariant "network": copy LR pixels into 2x2 blocks

    out = self_ensemble(identity_sr, x)
    torch.testing.assert_close(out, box_sum_adjoint(x[0]), rtol=0, atol=0)


def test_back_projection_makes_box_sum_match_the_input():
    lr = _smooth(24, 36, seed=4) + 5.0
    hr = upsample2x(_smooth(24, 36, seed=5))  # inconsistent estimate
    out = back_project(hr, lr, iterations=10)
    torch.testing.assert_close(box_sum(out) / 4, lr, atol=1e-5, rtol=0)
    consistent = out.clone()
    torch.testing.assert_close(back_project(consistent, lr, iterations=10), out, atol=1e-5, rtol=0)


def test_tiled_and_untiled_inference_agree():
    net = _tiny_net(seed=7)
    x = torch.stack([_smooth(50, 70, seed=s) for s in range(3)])
    margin = math.ceil(net.receptive_radius_hr(3) / 2) + 1

    def predict(inp: torch.Tensor) -> torch.Tensor:
        return self_ensemble(lambda t: net(t[None])[0, 0], inp)

    with torch.no_grad():
        whole = predict(x)
        tiled = tiled_predict(predict, x, tile_size=32, overlap=2 * margin + 4, margin=margin)
    torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=1e-4)


def test_random_crops_transform_inputs_and_target_together():
    target = _smooth(40, 56, seed=6)[None]
    pair = TrainingPair(inputs=box_sum(target) / 4, targets=target)
    x, y = random_crops(
        pair, lr_crop=12, batch_size=16, augment=True, generator=torch.Generator().manual_seed(0)
    )
    assert x.shape == (16, 1, 12, 12) and y.shape == (16, 1, 24, 24)
    torch.testing.assert_close(box_sum(y) / 4, x)


def test_journal_pair_recovers_the_shifted_scene():
    scene_lr = _smooth(32, 40, seed=8, cutoff=0.06) + 3.0
    shifts = torch.tensor([[0.0, 0.0], [0.4, -0.3], [1.1, 0.2], [1.5, 0.9], [1.7, 1.6], [2.0, 1.8]])
    frames = fourier_shift(scene_lr[None].expand(6, -1, -1), shifts)
    motion = MotionField(shifts, (32, 40))
    pair = training_pair(frames, motion, regime="journal", references=[1, 4])
    expected_inputs = box_sum(fourier_shift(scene_lr[None].expand(2, -1, -1), shifts[[1, 4]])) / 4
    torch.testing.assert_close(pair.inputs, expected_inputs, atol=1e-4, rtol=0)
    expected_target = fourier_shift(scene_lr, shifts[1])  # the early half 0..2's centre frame
    torch.testing.assert_close(pair.targets[0], expected_target, atol=1e-4, rtol=0)
    workshop = training_pair(frames, motion, regime="workshop", references=[1, 4])
    torch.testing.assert_close(workshop.inputs, box_sum(workshop.targets) / 4)


def test_lr_rule_drops_on_flat_loss_not_on_falling_loss():
    rng = np.random.default_rng(0)
    flat = 1.0 + 0.05 * rng.standard_normal(40)
    falling = np.linspace(1.0, 0.6, 40) + 0.05 * rng.standard_normal(40)
    assert loss_plateaued(flat.tolist())
    assert not loss_plateaued(falling.tolist())


def test_losses_vanish_on_a_perfect_output():
    img = _smooth(16, 16)[None, None]
    assert float(fourier_loss(img, img, sigma_cycles_per_px=0.25)) == 0.0
    assert float(total_variation(torch.ones(1, 1, 8, 8))) == 0.0


def test_config_errors_are_option_errors():
    with pytest.raises(OptionError, match="unknown preset"):
        config_from_preset("huge")
    with pytest.raises(OptionError, match="unknown Cryo-ZSSR option"):
        config_from_preset("fast", chanels=8)
    with pytest.raises(OptionError, match="regime"):
        ZssrConfig(regime="conference")  # type: ignore[arg-type]
    assert config_from_preset("fast", regime="workshop").use_shiftnet
    assert not config_from_preset("paper").use_shiftnet


def test_building_a_trainer_leaves_the_global_rng_as_it_was():
    state = torch.random.get_rng_state()
    Trainer(config_from_preset("fast"), device=torch.device("cpu"), seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
