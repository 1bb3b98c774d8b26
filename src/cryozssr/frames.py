"""A movie held as its stored integer counts, the gain reference applied to each chunk as it is taken.

Gain-corrected frames are floats: a K3 movie (5760 x 4092 x 40) is 0.94 GB as uint8 counts and
3.8 GB in float32. :class:`GainCorrected` keeps the counts and the ``(h, w)`` gain and multiplies
them when indexed, so every consumer that takes the movie a frame, a chunk or a tile at a time
(motion, the averages, ``misr``, ``mmse``, ``shift-add``) sees gain-corrected float32 frames while
the whole movie is never held in float32. Index it as the ``(t, h, w)`` tensor it stands for
(integers, slices, index tensors, per-frame cuts as ``frames[idx[:, None, None], rows[:, :,
None], cols[:, None, :]]``); anything else (a torch function, a tensor method) is served from the
whole float32 movie, made for that call and logged, so an unconverted consumer still computes the
right numbers, at the memory it always took.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch

logger = logging.getLogger(__name__)


class GainCorrected:
    """``counts * gain`` for ``(t, h, w)`` integer ``counts`` and an ``(h, w)`` ``gain`` (module
    docstring); the product is float32."""

    dtype = torch.float32

    def __init__(self, counts: torch.Tensor, gain: torch.Tensor) -> None:
        if counts.ndim != 3 or tuple(gain.shape) != tuple(counts.shape[-2:]):
            raise ValueError(
                f"need (t, h, w) counts and an (h, w) gain, got {tuple(counts.shape)} and"
                f" {tuple(gain.shape)}"
            )
        self.counts = counts
        self.gain = gain.to(device=counts.device, dtype=torch.float32)

    @property
    def shape(self) -> torch.Size:
        return self.counts.shape

    @property
    def ndim(self) -> int:
        return 3

    @property
    def device(self) -> torch.device:
        return self.counts.device

    def is_floating_point(self) -> bool:
        return True

    def numel(self) -> int:
        return self.counts.numel()

    def __len__(self) -> int:
        return self.counts.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        for t in range(len(self)):
            yield self[t]

    def __getitem__(self, key: Any) -> torch.Tensor:
        return self.counts[key].to(torch.float32) * self.gain[_spatial(key)]

    def float(self) -> torch.Tensor:
        """The whole movie in float32 (what this class exists to avoid; logged)."""
        logger.debug("gain-corrected movie %s made whole in float32", tuple(self.shape))
        return self.counts.to(torch.float32) * self.gain

    def __getattr__(self, name: str) -> Any:  # a tensor method this class does not provide
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.float(), name)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # a torch function of it
        def whole(x: Any) -> Any:
            if isinstance(x, GainCorrected):
                return x.float()
            if isinstance(x, list | tuple):
                return type(x)(whole(v) for v in x)
            return x

        return func(*whole(args), **{k: whole(v) for k, v in (kwargs or {}).items()})


def _spatial(key: Any) -> Any:
    """The part of a ``(t, h, w)`` index that applies to the ``(h, w)`` gain.

    Basic indices (an int or slice per axis) and advanced ones that broadcast to the result (a
    tensor per axis, as in per-frame cuts) both index the gain with their last two entries; an
    index of the frame axis alone takes the whole gain, which broadcasts.
    """
    if not isinstance(key, tuple):
        return slice(None)
    if key and key[0] is Ellipsis:
        key = (slice(None),) * (4 - len(key)) + key[1:]
    if len(key) > 3 or any(k is Ellipsis or k is None for k in key):
        raise IndexError(f"unsupported index of a gain-corrected movie: {key!r}")
    rest = key[1:]
    basic = all(isinstance(k, int | slice) for k in rest)
    cuts = len(rest) == 2 and all(isinstance(k, torch.Tensor) for k in rest)
    if not (basic or cuts):
        raise IndexError(f"unsupported index of a gain-corrected movie: {key!r}")
    return rest + (slice(None),) * (2 - len(rest)) if rest else slice(None)


def as_tensor(frames: torch.Tensor | GainCorrected) -> torch.Tensor:
    """``frames`` as a tensor (a :class:`GainCorrected` movie made whole in float32)."""
    return frames.float() if isinstance(frames, GainCorrected) else frames
