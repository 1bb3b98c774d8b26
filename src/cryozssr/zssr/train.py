"""ZSSR training (Shocher et al. 2018): Adam, ZSSR's learning-rate rule, stop at a floor or a maximum."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cryozssr.zssr.config import ZssrConfig
from cryozssr.zssr.losses import journal_loss, workshop_loss
from cryozssr.zssr.network import ShiftNet, SRNet, lanczos_shift
from cryozssr.zssr.pairs import TrainingPair, random_crops

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def loss_plateaued(losses: Sequence[float], *, slope_ratio: float = 1.5) -> bool:
    """ZSSR's test: is the linear trend of ``losses`` not significantly falling?

    Fits ``loss = slope * i + c`` and returns ``-slope_ratio * slope < stderr(slope)``, with the
    slope's standard error from the fit covariance (as ZSSR's ``np.polyfit(..., cov=True)``).
    """
    y = np.asarray(losses, dtype=np.float64)
    if y.size < 3:
        raise ValueError("need at least 3 losses to fit a trend")
    x = np.arange(y.size, dtype=np.float64)
    (slope, intercept) = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    stderr = np.sqrt(np.sum(resid**2) / (y.size - 2) / np.sum((x - x.mean()) ** 2))
    return bool(-slope_ratio * slope < stderr)


@dataclass
class TrainingHistory:
    """What training did: per-iteration losses, the learning-rate steps ``(iteration, lr)``."""

    losses: list[float] = field(default_factory=list)
    lr_steps: list[tuple[int, float]] = field(default_factory=list)
    iterations: int = 0
    stopped_by: str = "max_iterations"
    seconds: float = 0.0


class Trainer:
    """Train an :class:`SRNet` (and a ShiftNet when the config asks for it) on one training pair."""

    def __init__(self, config: ZssrConfig, *, device: torch.device, seed: int = 0) -> None:
        self.config = config
        self.device = device
        # torch.manual_seed seeds the CPU and every CUDA device: fork (and so restore) them all
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            self.model = SRNet(channels=config.channels, res_blocks=config.res_blocks).to(device)
            self.shiftnet = ShiftNet().to(device) if config.use_shiftnet else None
        self.generator = torch.Generator().manual_seed(seed + 1)

    def parameters(self) -> list[torch.nn.Parameter]:
        params = list(self.model.parameters())
        if self.shiftnet is not None:
            params += list(self.shiftnet.parameters())
        return params

    def loss(self, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        output = self.model(inputs)
        penalty = output.new_zeros(())
        if self.shiftnet is not None:
            shifts = self.shiftnet(output, target)
            output = lanczos_shift(output, shifts)
            penalty = cfg.shift_penalty * (shifts**2).mean()
        if cfg.regime == "workshop":
            value = workshop_loss(output, target, tv_weight=cfg.tv_weight)
        else:
            value = journal_loss(
                output,
                target,
                fourier_weight=cfg.fourier_weight,
                sigma_cycles_per_px=cfg.fourier_sigma_cycles_per_px,
            )
        return value + penalty

    def fit(self, pair: TrainingPair, *, on_progress: Progress | None = None) -> TrainingHistory:
        """Train on ``pair`` (already normalised, on any device) until the rate floor or the maximum."""
        cfg = self.config
        pair = TrainingPair(pair.inputs.to(self.device), pair.targets.to(self.device))
        lr = cfg.lr_initial
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        history = TrainingHistory(lr_steps=[(0, lr)])
        last_change = 0
        start = time.perf_counter()
        self.model.train()
        for it in range(1, cfg.max_iterations + 1):
            x, y = random_crops(
                pair,
                lr_crop=cfg.lr_crop,
                batch_size=cfg.batch_size,
                augment=cfg.augment,
                generator=self.generator,
            )
            optimiser.zero_grad(set_to_none=True)
            loss = self.loss(x, y)
            loss.backward()
            optimiser.step()
            history.losses.append(float(loss.detach()))
            history.iterations = it
            if on_progress is not None:
                on_progress("train", it, cfg.max_iterations)
            if (
                it % cfg.lr_check_every == 0
                and it - last_change >= cfg.lr_min_gap
                and len(history.losses) >= cfg.lr_fit_window
                and loss_plateaued(
                    history.losses[-cfg.lr_fit_window :], slope_ratio=cfg.lr_slope_ratio
                )
            ):
                lr /= 10
                last_change = it
                history.lr_steps.append((it, lr))
                log.debug("iteration %d: loss plateau, learning rate -> %g", it, lr)
                if lr < cfg.lr_stop * (1 - 1e-6):
                    history.stopped_by = "lr_stop"
                    break
                for group in optimiser.param_groups:
                    group["lr"] = lr
        history.seconds = time.perf_counter() - start
        self.model.eval()
        return history
