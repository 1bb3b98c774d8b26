"""Inference: 8-fold geometric self-ensemble, tiled prediction with blending, back-projection."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cryozssr.ops import box_sum, box_sum_adjoint
from cryozssr.tiling import blend_window, tile_starts
from cryozssr.zssr.network import upsample2x
from cryozssr.zssr.pairs import dihedral, dihedral_inverse

Predictor = Callable[[torch.Tensor], torch.Tensor]
"""``(K, h, w)`` LR inputs -> ``(2h, 2w)`` HR prediction."""


def self_ensemble(
    predict: Predictor, inputs: torch.Tensor, *, ensemble: bool = True
) -> torch.Tensor:
    """Pixel-wise median of ``predict`` over the 8 dihedral transforms, each inverted exactly.

    ``inputs`` is ``(K, h, w)``; returns ``(2h, 2w)``. ``ensemble=False``: one plain prediction.
    """
    if not ensemble:
        return predict(inputs)
    outs = [dihedral_inverse(predict(dihedral(inputs, d)), d) for d in range(8)]
    return torch.stack(outs).median(dim=0).values


def tiled_predict(
    predict: Predictor,
    inputs: torch.Tensor,
    *,
    tile_size: int,
    overlap: int,
    margin: int,
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Run ``predict`` on overlapping ``tile_size`` (LR px) tiles of ``(K, h, w)`` -> ``(2h, 2w)``.

    Each tile's output is weighted by a separable window: 0 within ``margin`` LR px of an inner
    tile edge (where the network's zero padding would differ from the full image), a linear ramp,
    then 1; weights are normalised by their sum. With ``margin`` >= the network's receptive radius
    the result equals the untiled prediction; no per-tile normalisation is done. Memory is bounded
    by one tile. ``on_tile(done, total)`` reports progress.
    """
    h, w = inputs.shape[-2:]
    if overlap <= 2 * margin and (h > tile_size or w > tile_size):
        raise ValueError(f"tile overlap {overlap} must exceed twice the margin {margin}")
    ramp = max(overlap - 2 * margin, 0)
    ys = [y for y, _ in tile_starts(h, tile_size, overlap, spacing="step")]
    xs = [x for x, _ in tile_starts(w, tile_size, overlap, spacing="step")]
    out = inputs.new_zeros(2 * h, 2 * w)
    linear = {"shape": "linear", "dtype": torch.float32, "device": out.device}
    weight = inputs.new_zeros(2 * h, 2 * w)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile_size, h - y0), min(tile_size, w - x0)
            pred = predict(inputs[:, y0 : y0 + th, x0 : x0 + tw])
            wy, wx = (
                blend_window(n, margin=margin, ramp=ramp, rise=p0 > 0, fall=p0 + n < size, **linear)
                for n, p0, size in ((th, y0, h), (tw, x0, w))
            )
            win = box_sum_adjoint(wy[:, None] * wx[None, :])  # LR weights on the HR grid
            out[2 * y0 : 2 * (y0 + th), 2 * x0 : 2 * (x0 + tw)] += win * pred
            weight[2 * y0 : 2 * (y0 + th), 2 * x0 : 2 * (x0 + tw)] += win
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    return out / weight


def back_project(hr: torch.Tensor, lr: torch.Tensor, *, iterations: int = 10) -> torch.Tensor:
    """Make the ``(2h, 2w)`` estimate consistent with the ``(h, w)`` LR image: ``box_sum(out)/4 == lr``.

    Iterative back-projection (Irani & Peleg 1991) with the 2x2 box average as the degradation and
    bilinear upsampling of the residual as the back-projection kernel (smooth corrections), closed
    by one exact orthogonal projection onto ``{x : box_sum(x)/4 = lr}``. ``iterations=0``: unchanged.
    """
    if iterations == 0:
        return hr
    out = hr
    for _ in range(iterations):
        out = out + upsample2x(lr - box_sum(out) / 4)
    return out + box_sum_adjoint(lr - box_sum(out) / 4)
