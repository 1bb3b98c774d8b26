"""The motion model every stage shares: a global trajectory plus an optional smooth local field.

Convention (see :mod:`cryozssr.ops`): ``shifts[t] = (y, x)`` is the position of the specimen in frame
``t`` relative to frame 0, in pixels of the movie the field describes. Frame ``t`` is therefore
``fourier_shift(frame_0_content, shifts[t])`` and is brought back onto frame 0 by ``-shifts[t]``.

The local part is sampled on a regular ``(gh, gw)`` grid of patch centres: node ``(i, j)`` sits at
``y = (i + 0.5) * h / gh - 0.5``, ``x = (j + 0.5) * w / gw - 0.5`` (pixel ``(0, 0)`` is centred on
``y = x = 0``) and values between nodes are interpolated
bilinearly (``grid_sample`` with ``align_corners=False``), clamped at the border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MotionField:
    """Specimen motion of one movie.

    Attributes
    ----------
    global_shifts_px:
        ``(t, 2)`` float tensor, ``(y, x)`` in pixels, ``global_shifts_px[0] == 0``.
    local_shifts_px:
        ``(t, gh, gw, 2)`` extra ``(y, x)`` shift at patch centres, or ``None`` (global motion only).
    image_shape:
        ``(h, w)`` of the frames the field describes, in pixels.
    """

    global_shifts_px: torch.Tensor
    image_shape: tuple[int, int]
    local_shifts_px: torch.Tensor | None = None

    def __post_init__(self) -> None:
        g = self.global_shifts_px
        if g.ndim != 2 or g.shape[-1] != 2:
            raise ValueError(f"global_shifts_px must be (t, 2), got {tuple(g.shape)}")
        loc = self.local_shifts_px
        if loc is not None and (loc.ndim != 4 or loc.shape[0] != g.shape[0] or loc.shape[-1] != 2):
            raise ValueError(f"local_shifts_px must be (t, gh, gw, 2), got {tuple(loc.shape)}")

    @property
    def n_frames(self) -> int:
        return int(self.global_shifts_px.shape[0])

    def shifts_at(self, yx_px: torch.Tensor) -> torch.Tensor:
        """Total shift ``(t, n, 2)`` of the specimen at ``(n, 2)`` positions ``(y, x)`` (pixels)."""
        total = self.global_shifts_px[:, None, :].expand(-1, yx_px.shape[0], -1)
        if self.local_shifts_px is None:
            return total.clone()
        return total + self._local_at(yx_px)

    def local_field(self) -> torch.Tensor | None:
        """Dense local shift ``(t, h, w, 2)`` at every pixel, or ``None``."""
        if self.local_shifts_px is None:
            return None
        h, w = self.image_shape
        dev = self.local_shifts_px.device
        ys = torch.arange(h, dtype=torch.float32, device=dev)
        xs = torch.arange(w, dtype=torch.float32, device=dev)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        yx = torch.stack([yy.flatten(), xx.flatten()], dim=-1)
        return self._local_at(yx).reshape(self.n_frames, h, w, 2)

    def _local_at(self, yx_px: torch.Tensor) -> torch.Tensor:
        assert self.local_shifts_px is not None
        h, w = self.image_shape
        loc = self.local_shifts_px.to(torch.float32).permute(0, 3, 1, 2)  # (t, 2, gh, gw)
        # grid_sample's -1 is the outer edge of pixel 0, i.e. coordinate -0.5
        gy = (yx_px[:, 0].float() + 0.5) / h * 2 - 1
        gx = (yx_px[:, 1].float() + 0.5) / w * 2 - 1
        grid = torch.stack([gx, gy], dim=-1)[None, None].expand(loc.shape[0], 1, -1, 2)
        out = F.grid_sample(loc, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out[:, :, 0, :].permute(0, 2, 1)  # (t, n, 2)

    def scaled(self, factor: float, image_shape: tuple[int, int] | None = None) -> MotionField:
        """The same motion in pixels ``factor`` times smaller (e.g. ``factor=2`` for LR -> HR)."""
        shape = image_shape or (
            round(self.image_shape[0] * factor),
            round(self.image_shape[1] * factor),
        )
        loc = None if self.local_shifts_px is None else self.local_shifts_px * factor
        return MotionField(self.global_shifts_px * factor, shape, loc)

    def select(self, frame_indices: list[int]) -> MotionField:
        """The motion of a subset of frames (e.g. even or odd frames for half-set validation).

        Shifts stay relative to the movie's frame 0, so an average of the subset aligned with it
        still shows the specimen at its frame-0 position.
        """
        loc = None if self.local_shifts_px is None else self.local_shifts_px[frame_indices]
        return MotionField(self.global_shifts_px[frame_indices], self.image_shape, loc)

    def crop(self, box: tuple[int, int, int, int] | list[int]) -> MotionField:
        """The motion of the sub-image ``box = [y0, x0, h, w]`` of the frames, in its own pixels.

        The global trajectory is the same (it moves every pixel alike). The local part is taken
        at the nodes of a new grid over the box, at least as dense as this one's (nodes where
        :meth:`shifts_at` puts them, so the two fields agree there and differ between nodes only
        by the difference of two bilinear interpolants). The whole frame is ``self`` itself.
        """
        y0, x0, h, w = (int(v) for v in box)
        big_h, big_w = self.image_shape
        if h < 1 or w < 1 or y0 < 0 or x0 < 0 or y0 + h > big_h or x0 + w > big_w:
            raise ValueError(f"box {[y0, x0, h, w]} is not inside the {big_h} x {big_w} frames")
        if (y0, x0, h, w) == (0, 0, big_h, big_w):
            return self
        if self.local_shifts_px is None:
            return MotionField(self.global_shifts_px, (h, w))
        gh, gw = self.local_shifts_px.shape[1:3]
        nh, nw = max(1, math.ceil(gh * h / big_h)), max(1, math.ceil(gw * w / big_w))
        dev = self.local_shifts_px.device
        ys = y0 + (torch.arange(nh, dtype=torch.float32, device=dev) + 0.5) * h / nh - 0.5
        xs = x0 + (torch.arange(nw, dtype=torch.float32, device=dev) + 0.5) * w / nw - 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        local = self._local_at(torch.stack([yy.flatten(), xx.flatten()], dim=-1))
        local = local.reshape(self.n_frames, nh, nw, 2).to(self.local_shifts_px.dtype)
        return MotionField(self.global_shifts_px, (h, w), local)

    def to_angstrom_xy(self, pixel_size_angstrom: float) -> list[list[float]]:
        """Global trajectory as ``[[x, y], ...]`` in Angstrom (the run JSON's ``trajectory_angstrom``)."""
        xy = self.global_shifts_px.flip(-1) * pixel_size_angstrom
        return [[float(v[0]), float(v[1])] for v in xy]
