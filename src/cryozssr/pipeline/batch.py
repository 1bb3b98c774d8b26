"""Many movies: select this job's share, skip finished ones, write the micrographs STAR file."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from cryozssr.errors import CryoZssrError, InputError, OptionError, OutputError
from cryozssr.io import open_movie, require_pixel_size, write_micrographs_star
from cryozssr.pipeline.config import RunConfig

log = logging.getLogger(__name__)


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


def preflight(
    movies: Sequence[Path],
    cfg: RunConfig,
    gain: torch.Tensor | None,
    *,
    keep_going: bool = False,
    failed: list[str] | None = None,
) -> list[Path]:
    """Check every movie's header (pixel size, frame count, gain shape) before any work starts.

    A bad movie raises at once, before anything is written; with ``keep_going`` it is logged, its
    name appended to ``failed``, and the good movies are returned.
    """
    good = []
    for path in movies:
        try:
            with open_movie(
                path, pixel_size_angstrom=cfg.pixel_size_angstrom, eer_fractions=cfg.eer_fractions
            ) as movie:
                require_pixel_size(movie)
                if gain is not None and tuple(gain.shape) != tuple(movie.shape):
                    raise InputError(
                        f"{path.name}: gain reference is {tuple(gain.shape)} but frames are "
                        f"{tuple(movie.shape)} (check --gain-rot / --gain-flip)"
                    )
        except CryoZssrError as exc:
            if not keep_going:
                raise
            log.error("%s", exc)
            if failed is not None:
                failed.append(path.name)
            continue
        good.append(path)
    return good


def prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and check it is writable (one clear error otherwise)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {out_dir} is not writable")


def write_star_from_records(out_dir: Path) -> Path | None:
    """(Re)write ``micrographs_sr.star`` from every complete record (``<stem>.json``) in ``out_dir``.

    Reading the records rather than this job's list keeps the STAR complete when shards of one
    dataset write into the same folder.
    """
    records = []
    for p in sorted(out_dir.glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "outputs" in rec and "output_pixel_size_angstrom" in rec:
            records.append(rec)
    if not records:
        return None
    first = records[0]
    sizes = {round(r["output_pixel_size_angstrom"], 6) for r in records}
    if len(sizes) > 1:
        log.warning("micrographs have different pixel sizes %s: one optics group is written", sizes)
    star = out_dir / "micrographs_sr.star"
    exp = first.get("exposure", {})
    write_micrographs_star(
        star,
        [r["outputs"]["sr"] for r in records],
        pixel_size_angstrom=first["output_pixel_size_angstrom"],
        voltage_kv=exp.get("voltage_kv", 300.0),
        spherical_aberration_mm=exp.get("spherical_aberration_mm", 2.7),
        amplitude_contrast=exp.get("amplitude_contrast", 0.07),
    )
    return star
