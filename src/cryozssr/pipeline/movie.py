"""Super-resolve one movie: read, motion-correct, average, run the method, write the outputs.

The JSON record is written last, so its presence marks a complete set of outputs (``--skip-existing``
relies on it when a cluster job is restarted).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import torch

from cryozssr import __version__
from cryozssr.dose import Exposure
from cryozssr.io import movie_stem, open_movie, require_pixel_size, write_mrc
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.pipeline import methods
from cryozssr.pipeline.config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MovieResult:
    stem: str
    sr_path: Path
    avg_path: Path
    json_path: Path
    pixel_size_angstrom: float
    seconds: float
    skipped: bool = False


def output_paths(out_dir: Path, stem: str) -> tuple[Path, Path, Path]:
    """``(<stem>_sr.mrc, <stem>_avg.mrc, <stem>.json)`` in ``out_dir``."""
    return out_dir / f"{stem}_sr.mrc", out_dir / f"{stem}_avg.mrc", out_dir / f"{stem}.json"


def _exposure(
    cfg: RunConfig, pixel_size: float, movie, frames: torch.Tensor, name: str
) -> Exposure:
    dose = cfg.dose_per_frame_e_per_a2
    if dose is None and movie.dtype_name.startswith(("int", "uint")):
        dose = float(frames.mean()) / pixel_size**2
        log.info(
            "%s: integer counts, so dose per frame = mean counts / pixel area = %.3f e/A^2 "
            "(pass --dose-per-frame to override)",
            name,
            dose,
        )
    elif dose is None:
        log.warning(
            "no --dose-per-frame for a float movie: frames are averaged without dose weighting"
        )
    return Exposure(
        pixel_size_angstrom=pixel_size,
        dose_per_frame_e_per_a2=dose,
        voltage_kv=cfg.voltage_kv,
        spherical_aberration_mm=cfg.spherical_aberration_mm,
        amplitude_contrast=cfg.amplitude_contrast,
    )


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return str(obj)


def process_movie(
    path: Path,
    cfg: RunConfig,
    out_dir: Path,
    *,
    device: torch.device,
    gain: torch.Tensor | None = None,
    protect: Sequence[Path] = (),
    command_line: str = "",
    on_progress: Callable[[str, int, int], None] | None = None,
) -> MovieResult:
    """Write ``<stem>_sr.mrc``, ``<stem>_avg.mrc`` (and half-set SRs if asked) and ``<stem>.json``."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    stem = movie_stem(path)
    sr_path, avg_path, json_path = output_paths(out_dir, stem)

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - t0, 3)
        return now

    t = time.perf_counter()
    movie = open_movie(
        path, pixel_size_angstrom=cfg.pixel_size_angstrom, eer_fractions=cfg.eer_fractions
    )
    pixel_size = require_pixel_size(movie)
    frames = movie.read(gain=gain, device=device)
    exposure = _exposure(cfg, pixel_size, movie, frames, path.name)
    t = lap("read", t)

    motion_cfg = (
        MotionConfig() if cfg.motion_patches is None else MotionConfig(patches=cfg.motion_patches)
    )
    motion = estimate_motion(frames, config=motion_cfg)
    t = lap("motion", t)
    average = dose_weighted_average(frames, motion, exposure=exposure)
    t = lap("average", t)

    inputs = methods.MethodInputs(frames=frames, motion=motion, average=average, exposure=exposure)
    sr, method_info = methods.super_resolve(inputs, cfg, on_progress=on_progress)
    t = lap("super_resolve", t)

    half_paths: dict[str, str] = {}
    if cfg.half_sets:
        for offset, name in ((0, "even"), (1, "odd")):
            idx = list(range(offset, frames.shape[0], 2))
            sub_motion = motion.select(idx)
            sub_exposure = exposure.every_other(offset)
            sub = methods.MethodInputs(
                frames=frames[idx],
                motion=sub_motion,
                average=dose_weighted_average(frames[idx], sub_motion, exposure=sub_exposure),
                exposure=sub_exposure,
            )
            half, _ = methods.super_resolve(sub, cfg, on_progress=on_progress)
            half_path = out_dir / f"{stem}_sr_{name}.mrc"
            write_mrc(
                half_path, half.cpu(), pixel_size_angstrom=pixel_size / 2, overwrite_protect=protect
            )
            half_paths[name] = half_path.name
        t = lap("half_sets", t)

    if not bool(torch.isfinite(sr).all()):
        raise RuntimeError(
            f"{path.name}: the {cfg.method} output is not finite (a bug: please report it)"
        )
    write_mrc(sr_path, sr.cpu(), pixel_size_angstrom=pixel_size / 2, overwrite_protect=protect)
    write_mrc(avg_path, average.cpu(), pixel_size_angstrom=pixel_size, overwrite_protect=protect)
    lap("write", t)

    record = {
        "cryozssr_version": __version__,
        "method": cfg.method,
        "input": str(path),
        "stem": stem,
        "outputs": {
            "sr": sr_path.name,
            "avg": avg_path.name,
            **{f"sr_{k}": v for k, v in half_paths.items()},
        },
        "command_line": command_line,
        "seed": cfg.seed,
        "device": str(device),
        "config": cfg.to_dict(),
        "method_config": _jsonable(cfg.method_config),
        "motion_config": _jsonable(motion_cfg),
        "input_pixel_size_angstrom": pixel_size,
        "output_pixel_size_angstrom": pixel_size / 2,
        "n_frames": int(frames.shape[0]),
        "input_shape": list(frames.shape[-2:]),
        "output_shape": list(sr.shape[-2:]),
        "exposure": _jsonable(exposure),
        "trajectory_angstrom": motion.to_angstrom_xy(pixel_size),
        "local_motion": motion.local_shifts_px is not None,
        "timings_seconds": timings,
        "method_info": _jsonable(method_info),
    }
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(json_path)
    seconds = time.perf_counter() - t_start
    return MovieResult(stem, sr_path, avg_path, json_path, pixel_size, seconds)
