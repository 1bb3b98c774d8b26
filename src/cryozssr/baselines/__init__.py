"""The closed-form 2x super-resolution methods: interpolation and the multi-frame family.

* :func:`upsample` - bilinear, bicubic or Fourier (zero-padding) interpolation of the aligned,
  dose-weighted LR average: what the Cryo-ZSSR papers compared against.
* :func:`shift_add` - drizzle-style shift-and-add of all frames onto the HR grid, then a Wiener
  deconvolution of the pixel aperture.
* :func:`misr` - frequency-domain least-squares multi-frame SR (Tsai & Huang 1984), dose-weighted
  and Tikhonov-regularised.
* :func:`mmse` - the per-alias MMSE (Wiener) estimate with the movie's own signal spectrum, measured
  from even/odd half reconstructions (``cryozssr run``'s default method).

All return ``(2h, 2w)`` images in counts per HR pixel per frame showing the specimen at its frame-0
position (LR pixel ``(I, J)`` covers HR pixels ``(2I..2I+1, 2J..2J+1)``).
"""

from cryozssr.baselines.config import MisrConfig, MmseConfig, ShiftAddConfig
from cryozssr.baselines.interpolate import UPSAMPLE_METHODS, upsample
from cryozssr.baselines.misr import misr
from cryozssr.baselines.mmse import mmse
from cryozssr.baselines.shift_add import shift_add

__all__ = [
    "UPSAMPLE_METHODS",
    "MisrConfig",
    "MmseConfig",
    "ShiftAddConfig",
    "misr",
    "mmse",
    "shift_add",
    "upsample",
]
