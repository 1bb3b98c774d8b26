"""Tiles of a large image: where they start, and the windows that blend them back together.

Pure tensor helpers for the methods that work tile by tile (``misr``'s alias solve, zssr's network
inference). Tiles overlap by ``overlap`` pixels; a tile's blending window is 0 for ``margin`` pixels
at an edge it shares with a neighbour (where the tile's own boundary condition is wrong), rises over
``ramp`` pixels, and is 1 elsewhere and along the image border; outputs are divided by the summed
windows.
"""

from __future__ import annotations

import math
from typing import Literal

import torch


def tile_starts(
    n: int, size: int, overlap: int, *, spacing: Literal["even", "step"] = "even"
) -> list[tuple[int, int]]:
    """``(start, length)`` of tiles of ``size`` covering ``0 .. n-1`` with at least ``overlap``.

    ``even``: the fewest tiles, spread evenly (starts rounded). ``step``: every ``size - overlap``
    pixels, the last tile flush with the end. One tile ``(0, n)`` when ``n <= size``.
    """
    if n <= size:
        return [(0, n)]
    if spacing == "even":
        count = math.ceil((n - overlap) / (size - overlap))
        starts = torch.linspace(0, n - size, count, device="cpu").round().long().tolist()
    else:
        starts = sorted({*range(0, n - size, size - overlap), n - size})
    return [(s, size) for s in starts]


def blend_window(
    length: int,
    *,
    margin: int,
    ramp: int,
    rise: bool,
    fall: bool,
    shape: Literal["cosine", "linear"] = "cosine",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """1-D blending window ``(length,)``: ``margin`` zeros, a ``ramp``-pixel rise, then ones.

    ``rise`` / ``fall``: the start / end edge is shared with a neighbouring tile (else it is the
    image border and stays 1). ``cosine``: ``sin^2(pi/2 (i + 1/2) / ramp)``; ``linear``:
    ``(i + 1) / (ramp + 1)``. The edge is cut to half the tile.
    """
    if shape == "cosine":
        i = torch.arange(ramp, dtype=torch.float64, device=device)
        rising = torch.sin(0.5 * math.pi * (i + 0.5) / ramp) ** 2
    else:
        rising = torch.arange(1, ramp + 1, device=device) / (ramp + 1)
    zeros = torch.zeros(margin, dtype=rising.dtype, device=device)
    edge = torch.cat([zeros, rising])[: length // 2].to(dtype)
    win = torch.ones(length, dtype=dtype, device=device)
    if rise:
        win[: edge.numel()] = edge
    if fall:
        win[length - edge.numel() :] = edge.flip(0)
    return win
