"""The machine record every benchmark JSON carries (import as ``from _machine import machine``)."""

from __future__ import annotations

import os
import platform

import torch


def machine(load_average_at_start: tuple[float, float, float]) -> dict:
    """CPU, cores, torch build and threads, and the load average at the start and now."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_average_at_start,
        "load_average_at_end": os.getloadavg(),
    }
