"""Many movies: select this job's share of them, prepare the output folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryozssr.errors import OptionError, OutputError


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` (1-based, e.g. ``$SLURM_ARRAY_TASK_ID/$N``) -> ``(i, n)``; ``None`` -> ``(1, 1)``."""
    if spec is None:
        return 1, 1
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise OptionError(f"--shard {spec!r}: expected I/N, e.g. 3/10") from None
    if not 1 <= i <= n:
        raise OptionError(f"--shard {spec!r}: I must be between 1 and N")
    return i, n


def shard(paths: Sequence[Path], i: int, n: int) -> list[Path]:
    """Every n-th movie starting at the i-th (1-based): shards are disjoint and cover the list."""
    return list(paths[i - 1 :: n])


def prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and check it is writable (one clear error otherwise)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {out_dir} is not writable")
