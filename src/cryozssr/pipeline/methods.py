"""One function per ``--method``: LR frames + motion in, a 2x micrograph (counts per HR pixel) out.

Every method sees the same inputs: gain-corrected LR frames ``(t, h, w)``, the motion estimated on
them, the motion-corrected dose-weighted average, and the exposure. None is given anything the
others are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from cryozssr.dose import Exposure
from cryozssr.motion.field import MotionField
from cryozssr.pipeline.config import RunConfig

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MethodInputs:
    frames: torch.Tensor  # (t, h, w) LR counts, gain-corrected, on the run's device
    motion: MotionField  # LR pixels
    average: torch.Tensor  # (h, w) motion-corrected, dose-weighted average
    exposure: Exposure


def _interpolate(kind: str):
    def method(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
        from cryozssr.baselines import upsample

        return upsample(x.average, method=kind, factor=2), {}

    return method


def _shift_add(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
    from cryozssr.baselines import shift_add

    options = asdict(cfg.method_config)
    return shift_add(x.frames, x.motion, exposure=x.exposure, factor=2, **options), {}


def _misr(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
    from cryozssr.baselines import misr

    options = asdict(cfg.method_config)
    return misr(x.frames, x.motion, exposure=x.exposure, factor=2, **options), {}


def _mmse(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
    from cryozssr.baselines import mmse

    result = mmse(x.frames, x.motion, exposure=x.exposure, config=cfg.method_config)
    return result.image, {"mmse": result.record()}


def _zssr(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
    from pathlib import Path

    from cryozssr.io.checkpoint import load_checkpoint, save_checkpoint
    from cryozssr.zssr import super_resolve

    config = cfg.method_config
    checkpoint = cfg.zssr_checkpoint
    # a dataset-level network: fine-tuned from the checkpoint if there is one, else trained here
    # and saved for the next movies (and for a resumed batch)
    reuse = checkpoint is not None and Path(checkpoint).exists()
    result = super_resolve(
        x.frames,
        x.motion,
        exposure=x.exposure,
        config=config,
        device=x.frames.device,
        seed=cfg.seed,
        on_progress=on_progress,
        initial_state=load_checkpoint(checkpoint, config=config) if reuse else None,
    )
    record: dict[str, Any] = {"history": result.history}
    if checkpoint is not None:
        record["checkpoint"] = {"path": str(checkpoint), "fine_tuned": reuse}
        if not reuse and result.model_state is not None:
            save_checkpoint(checkpoint, result.model_state, config=config)
    return result.image, record


METHOD_FUNCTIONS: dict[str, Callable[..., tuple[torch.Tensor, dict[str, Any]]]] = {
    "bilinear": _interpolate("bilinear"),
    "bicubic": _interpolate("bicubic"),
    "fourier": _interpolate("fourier"),
    "shift-add": _shift_add,
    "misr": _misr,
    "mmse": _mmse,
    "zssr": _zssr,
}


def super_resolve(
    x: MethodInputs, cfg: RunConfig, *, on_progress: Progress | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run ``cfg.method`` on one movie's inputs; returns the 2x image and method-specific records."""
    return METHOD_FUNCTIONS[cfg.method](x, cfg, on_progress)
