"""``super_resolve``: one movie in, one 2x super-resolved micrograph out (Cryo-ZSSR)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from cryozssr.dose import Exposure
from cryozssr.errors import InputError
from cryozssr.motion.averages import choose_references, reference_aligned_averages
from cryozssr.motion.field import MotionField
from cryozssr.ops import fourier_shift, normalise
from cryozssr.register import estimate_shift
from cryozssr.zssr.config import ZssrConfig
from cryozssr.zssr.inference import back_project, self_ensemble, tiled_predict
from cryozssr.zssr.network import upsample2x
from cryozssr.zssr.pairs import TrainingPair, training_pair
from cryozssr.zssr.subpixel import fraction_grouped_averages, grouped_training_pair
from cryozssr.zssr.train import Trainer

log = logging.getLogger(__name__)


@dataclass
class ZssrHistory:
    """What a run did, for the run JSON."""

    losses: list[float] = field(default_factory=list)
    lr_steps: list[tuple[int, float]] = field(default_factory=list)
    iterations: int = 0
    stopped_by: str = ""
    references: list[int] = field(default_factory=list)
    output_shift_hr_px: tuple[float, float] = (0.0, 0.0)
    seconds_training: float = 0.0
    seconds_inference: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "losses": self.losses,
            "lr_steps": [{"iteration": i, "lr": lr} for i, lr in self.lr_steps],
            "iterations": self.iterations,
            "stopped_by": self.stopped_by,
            "references": self.references,
            "output_shift_hr_px": list(self.output_shift_hr_px),
            "seconds_training": self.seconds_training,
            "seconds_inference": self.seconds_inference,
        }


@dataclass
class ZssrResult:
    """``image``: ``(2h, 2w)`` counts per HR pixel per frame, specimen at its frame-0 position."""

    image: torch.Tensor
    history: ZssrHistory
    config: ZssrConfig
    model_state: dict[str, torch.Tensor] | None = None
    """The trained network's weights (CPU), for a dataset-level checkpoint; ``None``: no network."""


def _check(frames: torch.Tensor, motion: MotionField, config: ZssrConfig) -> None:
    if frames.ndim != 3:
        raise InputError(f"expected a (t, h, w) movie, got shape {tuple(frames.shape)}")
    t, h, w = frames.shape
    if motion.n_frames != t:
        raise InputError(f"motion has {motion.n_frames} frames, the movie {t}")
    if config.n_inputs > t:
        raise InputError(
            f"K = {config.n_inputs} averages need at least {config.n_inputs} frames, got {t}"
        )
    if config.regime == "journal" and t < 2:
        raise InputError(
            "the journal regime splits the movie in halves: it needs at least 2 frames"
        )
    if min(h, w) < 8:
        raise InputError(f"frames of {h}x{w} pixels are too small (need at least 8x8)")


def super_resolve(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure,
    config: ZssrConfig | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
) -> ZssrResult:
    """Super-resolve ``frames`` ``(t, h, w)`` (LR counts) 2x with Cryo-ZSSR.

    ``motion`` is in LR pixels (global part used, as in the papers). The network sees ``K``
    all-frame averages aligned to ``K`` reference frames; its output (ensemble median) is moved
    onto the frame-0 position by registering it to the upsampled frame-0-aligned average, then
    back-projected so that ``box_sum(image) == average`` (both per frame); without
    back-projection only the mean is matched (counts are conserved). ``exposure`` is kept
    for the interface: the papers' regimes do no dose weighting (the papers do none).
    ``on_progress(stage, done, total)`` with stages ``train`` and ``infer``. Runs on ``device``
    (default: the device of ``frames``); the same seed gives the same output on the CPU.
    ``initial_state``: network weights to start from (see :func:`fit_and_predict`).
    """
    config = config or ZssrConfig()
    _check(frames, motion, config)
    device = torch.device(device) if device is not None else frames.device
    frames = frames.to(device=device)
    del exposure  # the papers' regimes use plain averages
    frames = frames.to(torch.float32)
    t = frames.shape[0]
    references = choose_references(t, config.n_inputs, mode=config.references, seed=seed)

    if config.inputs == "grouped":
        global_only = MotionField(motion.global_shifts_px, tuple(motion.image_shape))
        lr_inputs, _ = fraction_grouped_averages(frames, global_only, n_groups=config.n_inputs)
        pair = TrainingPair(
            *grouped_training_pair(
                frames, global_only, regime=config.regime, n_groups=config.n_inputs
            )
        )
    else:
        lr_inputs = reference_aligned_averages(frames, motion, references)
        pair = training_pair(frames, motion, regime=config.regime, references=references)
    anchor = reference_aligned_averages(frames, motion, [0])[0]
    result = fit_and_predict(
        lr_inputs,
        pair,
        anchor,
        config=config,
        device=device,
        seed=seed,
        on_progress=on_progress,
        initial_state=initial_state,
    )
    result.history.references = references
    return result


def fit_and_predict(
    lr_inputs: torch.Tensor,
    pair: TrainingPair,
    anchor: torch.Tensor,
    *,
    config: ZssrConfig,
    device: torch.device | str | None = None,
    seed: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
) -> ZssrResult:
    """Train the network on ``pair`` and super-resolve ``lr_inputs`` ``(K, h, w)`` (LR counts).

    The inference half of :func:`super_resolve`, for any inputs and training pair (counts, not
    normalised): everything is normalised by the mean and std of ``lr_inputs``. The output is
    registered onto ``anchor`` ``(h, w)`` (the average aligned to frame 0) upsampled, then
    back-projected onto it. ``initial_state``: start from these network weights (a dataset-level
    checkpoint, :mod:`cryozssr.io.checkpoint`) and train ``config.fine_tune_iterations`` instead
    of ``max_iterations``; the trained weights come back in ``ZssrResult.model_state``.
    """
    device = torch.device(device) if device is not None else lr_inputs.device
    lr_inputs, mean, std = normalise(lr_inputs.to(device=device, dtype=torch.float32))
    anchor = anchor.to(device=device, dtype=torch.float32)
    pair = TrainingPair(
        (pair.inputs.to(device) - mean) / std, (pair.targets.to(device) - mean) / std
    )

    if initial_state is None:
        trainer = Trainer(config, device=device, seed=seed)
    else:  # fine-tune a dataset-level network briefly
        trainer = Trainer(
            replace(config, max_iterations=config.fine_tune_iterations), device=device, seed=seed
        )
        trainer.model.load_state_dict(initial_state)
    trained = trainer.fit(pair, on_progress=on_progress)
    model = trainer.model

    start = time.perf_counter()
    margin = math.ceil(model.receptive_radius_hr(config.n_inputs) / 2) + 1
    overlap = max(config.tile_overlap, 2 * margin + 4)
    tile_size = max(config.tile_size, 2 * overlap)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x[None])[0, 0]

    def predict_ensemble(x: torch.Tensor) -> torch.Tensor:
        return self_ensemble(predict, x, ensemble=config.ensemble)

    with torch.no_grad():
        hr = tiled_predict(
            predict_ensemble,
            lr_inputs,
            tile_size=tile_size,
            overlap=overlap,
            margin=margin,
            on_tile=None if on_progress is None else lambda d, n: on_progress("infer", d, n),
        )
        hr = hr * std + mean  # counts per LR pixel per frame, on the HR grid
        # put the specimen at its frame-0 position: the output sits where the training target did
        # (journal: the early half's centre frame; workshop: the references, or wherever ShiftNet's
        # registration left it)
        shift = estimate_shift(upsample2x(anchor), hr, upsample=20, lowpass_cycles_per_px=0.15)
        hr = fourier_shift(hr, -shift.to(hr.dtype))
        if config.backprojection_iterations:
            hr = back_project(hr, anchor, iterations=config.backprojection_iterations)
        else:  # conserve the counts at least (MAE regresses to a median, which is biased)
            hr = hr - hr.mean() + anchor.mean()
    seconds_inference = time.perf_counter() - start
    history = ZssrHistory(
        losses=trained.losses,
        lr_steps=trained.lr_steps,
        iterations=trained.iterations,
        stopped_by=trained.stopped_by,
        output_shift_hr_px=(float(shift[0]), float(shift[1])),
        seconds_training=trained.seconds,
        seconds_inference=seconds_inference,
    )
    log.info(
        "Cryo-ZSSR (%s): %d iterations (%s), %.1f s training, %.1f s inference",
        config.regime,
        trained.iterations,
        trained.stopped_by,
        trained.seconds,
        seconds_inference,
    )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return ZssrResult(image=hr / 4, history=history, config=config, model_state=state)
