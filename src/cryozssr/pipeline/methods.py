"""One function per ``--method``: LR frames + motion in, a 2x micrograph (counts per HR pixel) out.

Every method sees the same inputs: gain-corrected LR frames ``(t, h, w)`` (with a gain reference, a
:class:`~cryozssr.frames.GainCorrected` movie: the counts are corrected chunk by chunk), the motion
estimated on them, the motion-corrected dose-weighted average, and the exposure. None is given anything the
others are not. ``misr`` and ``mmse`` with global motion form the average themselves, in the pass
over the frames their solve makes anyway (:func:`forms_average`): every frame is transformed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch

from cryozssr.dose import Exposure
from cryozssr.frames import GainCorrected, as_tensor
from cryozssr.motion.field import MotionField
from cryozssr.pipeline.config import RunConfig

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MethodInputs:
    frames: torch.Tensor | GainCorrected  # (t, h, w) LR counts, gain-corrected, run's device
    motion: MotionField  # LR pixels
    average: torch.Tensor | None  # (h, w) motion-corrected, dose-weighted; None: forms_average
    exposure: Exposure


class MethodOutput(NamedTuple):
    image: torch.Tensor  # (2h, 2w)
    record: dict[str, Any]  # method-specific, for the run record
    average: torch.Tensor | None = None  # (h, w) when the method formed the average itself


FORMS_AVERAGE = ("misr", "mmse")
"""Methods that form the dose-weighted average in their own pass over the frames (global motion)."""


def forms_average(method: str, motion: MotionField) -> bool:
    """True when ``method`` forms the average itself (give it ``average=None``): with global
    motion only (with local motion the pipeline's average warps frames more finely than tiles)."""
    return method in FORMS_AVERAGE and motion.local_shifts_px is None


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
    from cryozssr.baselines.misr import misr, misr_with_average

    options = asdict(cfg.method_config)
    if x.average is None:
        image, average = misr_with_average(
            x.frames, x.motion, exposure=x.exposure, factor=2, **options
        )
        return image, {}, average
    return misr(x.frames, x.motion, exposure=x.exposure, factor=2, **options), {}


def _mmse(x: MethodInputs, cfg: RunConfig, on_progress: Progress | None):
    from cryozssr.baselines import mmse

    result = mmse(x.frames, x.motion, exposure=x.exposure, config=cfg.method_config)
    return result.image, {"mmse": result.record()}, result.average


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
        as_tensor(x.frames),  # the network trains on the whole movie
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
) -> MethodOutput:
    """Run ``cfg.method`` on one movie's inputs: the 2x image, method-specific records and the
    average (``x.average``, or the method's own when ``x.average`` is None)."""
    if x.average is None and not forms_average(cfg.method, x.motion):
        raise ValueError(f"{cfg.method} needs the average in its inputs")
    out = MethodOutput(*METHOD_FUNCTIONS[cfg.method](x, cfg, on_progress))
    return out if x.average is None else out._replace(average=x.average)
