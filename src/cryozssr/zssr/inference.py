"""Inference: 8-fold geometric self-ensemble, tiled prediction with blending, back-projection."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cryozssr.ops import box_sum, box_sum_adjoint
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


def _ramp(n: int, *, margin: int, ramp: int, rise: bool, fall: bool, device) -> torch.Tensor:
    """1-D blending weight of a tile of length ``n``: 0 for ``margin`` px at an inner edge, a linear
    ramp over ``ramp`` px, then 1. ``rise``/``fall``: the start/end edge is inner (not the image's)."""
    w = torch.ones(n, device=device)
    edge = torch.cat([torch.zeros(margin), torch.arange(1, ramp + 1) / (ramp + 1)]).to(device)
    edge = edge[: n // 2]
    if rise:
        w[: edge.numel()] = edge
    if fall:
        w[n - edge.numel() :] = edge.flip(0)
    return w


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = [*range(0, size - tile, step), size - tile]
    return sorted(set(starts))


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
    ys, xs = _starts(h, tile_size, overlap), _starts(w, tile_size, overlap)
    out = inputs.new_zeros(2 * h, 2 * w)
    weight = inputs.new_zeros(2 * h, 2 * w)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile_size, h - y0), min(tile_size, w - x0)
            pred = predict(inputs[:, y0 : y0 + th, x0 : x0 + tw])
            wy = _ramp(
                th, margin=margin, ramp=ramp, rise=y0 > 0, fall=y0 + th < h, device=out.device
            )
            wx = _ramp(
                tw, margin=margin, ramp=ramp, rise=x0 > 0, fall=x0 + tw < w, device=out.device
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
