"""Choose the torch device for a run: ``auto`` takes CUDA when present and says when it falls back."""

from __future__ import annotations

import logging

import torch

from cryozssr.errors import OptionError

log = logging.getLogger(__name__)


def resolve_device(spec: str = "auto") -> torch.device:
    """Return the device for ``spec`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    ``auto`` picks ``cuda`` when a GPU is visible and logs a warning when it falls back to the CPU.
    Asking for CUDA explicitly on a machine without it is an :class:`OptionError`.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.warning(
            "no CUDA device found: running on the CPU (slower; results agree with a GPU run to "
            "rounding, not bit for bit)"
        )
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError(
                f"--device {spec}: CUDA is not available on this machine (try --device cpu)"
            )
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OptionError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        return device
    raise OptionError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
