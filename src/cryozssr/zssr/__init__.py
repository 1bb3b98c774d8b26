"""Cryo-ZSSR (Huang et al.): movie-specific, self-supervised 2x super-resolution.

movie -> reference-aligned averages -> training pairs (:mod:`.pairs`) -> SR network
(:mod:`.network`) trained with ZSSR's schedule (:mod:`.train`) -> ensemble, tiled inference and
back-projection (:mod:`.inference`) -> micrograph (:func:`super_resolve`).
"""

from cryozssr.zssr.api import ZssrHistory, ZssrResult, super_resolve
from cryozssr.zssr.config import PRESETS, ZssrConfig, config_from_preset

__all__ = [
    "PRESETS",
    "ZssrConfig",
    "ZssrHistory",
    "ZssrResult",
    "config_from_preset",
    "super_resolve",
]
