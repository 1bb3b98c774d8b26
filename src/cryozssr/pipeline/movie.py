"""Super-resolve one movie: read, check, motion-correct, average, run the method, write the outputs.

Every output is written atomically and the JSON record last; what is *done* is decided by the batch
manifest (:mod:`cryozssr.pipeline.manifest`), which lists a movie only after all its files exist.
Numeric failures raise :class:`~cryozssr.errors.ProcessingError` (a recorded per-movie failure).
"""

from __future__ import annotations

import contextlib
import functools
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
from cryozssr.errors import InputError, ProcessingError
from cryozssr.frames import GainCorrected, as_tensor
from cryozssr.io import (
    atomic_path,
    movie_stem,
    open_movie,
    require_pixel_size,
    write_mrc,
    write_star,
)
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.motion.refine import refine_motion
from cryozssr.pipeline import methods
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.sanity import check_dose_per_frame, check_pixel_size, check_raw_frames
from cryozssr.pipeline.star import micrograph_row, motion_star_blocks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MovieResult:
    stem: str
    sr_path: Path
    avg_path: Path
    json_path: Path
    pixel_size_angstrom: float
    seconds: float
    outputs: tuple[str, ...] = ()  # every file written, names in the output folder
    star_row: dict[str, Any] | None = None  # the micrographs STAR row (pipeline.star)


def output_paths(out_dir: Path, stem: str) -> tuple[Path, Path, Path]:
    """``(<stem>_sr.mrc, <stem>_avg.mrc, <stem>.json)`` in ``out_dir``."""
    return out_dir / f"{stem}_sr.mrc", out_dir / f"{stem}_avg.mrc", out_dir / f"{stem}.json"


def output_names(stem: str, cfg: RunConfig) -> tuple[str, ...]:
    """Every file :func:`process_movie` writes for ``stem`` (names in the output folder)."""
    halves = (f"{stem}_sr_even.mrc", f"{stem}_sr_odd.mrc") if cfg.half_sets else ()
    return (f"{stem}_sr.mrc", f"{stem}_avg.mrc", *halves, f"{stem}_sr.star", f"{stem}.json")


def _exposure(
    cfg: RunConfig, pixel_size: float, movie, frames: torch.Tensor, name: str
) -> Exposure:
    dose = cfg.dose_per_frame_e_per_a2
    if dose is None and movie.dtype_name.startswith(("int", "uint")):
        dose = mean_counts(frames) / pixel_size**2
        check_dose_per_frame(dose, source=f"{name}: mean counts / pixel area")
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


def mean_counts(frames: torch.Tensor) -> float:
    """Mean of a ``(t, h, w)`` movie of any dtype, one frame at a time (no float copy)."""
    total = sum(float(frame.sum(dtype=torch.float64)) for frame in frames)
    return total / frames.numel()


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
    device: torch.device | str,
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
    with movie:
        pixel_size = require_pixel_size(movie)
        if cfg.pixel_size_angstrom is None:
            check_pixel_size(pixel_size, source=f"{path.name}: header")
        if gain is not None and tuple(gain.shape) != movie.shape:
            raise InputError(
                f"{path.name}: gain reference is {tuple(gain.shape)} but frames are "
                f"{movie.shape} (check --gain-rot / --gain-flip)"
            )
        if not isinstance(device, torch.device):  # resolved once the header is known to be good
            device = _resolve_device(device)
        # integer counts stay integers (4x less memory than float32); a gain reference is
        # applied chunk by chunk as the frames are taken (GainCorrected)
        frames = movie.read(device=device, keep_integers=True)
    check_raw_frames(frames, dtype_name=movie.dtype_name, name=path.name)
    if cfg.half_sets and cfg.score_folds is not None:
        from cryozssr.evaluate.score import check_folds

        try:  # before any work: --score-folds the movie cannot have is the user's error
            check_folds(cfg.score_folds, frames.shape[0])
        except ValueError as exc:
            raise InputError(f"{path.name}: --score-folds: {exc}") from None
    if gain is not None:
        if frames.is_floating_point():
            frames *= gain.to(frames.device)
        else:
            frames = GainCorrected(frames, gain)
    exposure = _exposure(cfg, pixel_size, movie, frames, path.name)
    t = lap("read", t)

    motion_cfg = (
        MotionConfig() if cfg.motion_patches is None else MotionConfig(patches=cfg.motion_patches)
    )
    with _numeric(path.name, "motion estimation"):
        motion = estimate_motion(frames, config=motion_cfg)
    refined = None
    if cfg.motion_refine:
        with _numeric(path.name, "motion refinement"):
            motion, refined = refine_motion(frames, motion, exposure=exposure)
    _require_finite(motion.global_shifts_px, path.name, "motion estimation")
    t = lap("motion", t)
    average = _average(frames, motion, exposure, cfg.method)  # None: the method forms it
    t = lap("average", t)

    inputs = methods.MethodInputs(frames=frames, motion=motion, average=average, exposure=exposure)
    with _numeric(path.name, cfg.method):
        sr, method_info, average = methods.super_resolve(inputs, cfg, on_progress=on_progress)
    _require_finite(sr, path.name, f"the {cfg.method} output")
    _require_finite(average, path.name, "the dose-weighted average")
    t = lap("super_resolve", t)

    half_paths: dict[str, str] = {}
    halves: list[torch.Tensor] = []
    alias_score = None
    if cfg.half_sets:
        for offset, name in ((0, "even"), (1, "odd")):
            idx = list(range(offset, frames.shape[0], 2))
            half = _run_on(frames, idx, motion, exposure, cfg, path.name, on_progress)
            _require_finite(half, path.name, f"the {cfg.method} {name}-frame output")
            half_path = out_dir / f"{stem}_sr_{name}.mrc"
            write_mrc(
                half_path, half.cpu(), pixel_size_angstrom=pixel_size / 2, overwrite_protect=protect
            )
            half_paths[name] = half_path.name
            halves.append(half)
        t = lap("half_sets", t)
        alias_score = _score(frames, motion, exposure, cfg, halves, path.name, on_progress)
        t = lap("alias_score", t)

    write_mrc(sr_path, sr.cpu(), pixel_size_angstrom=pixel_size / 2, overwrite_protect=protect)
    write_mrc(avg_path, average.cpu(), pixel_size_angstrom=pixel_size, overwrite_protect=protect)
    motion_star = out_dir / f"{stem}_sr.star"
    write_star(
        motion_star,
        motion_star_blocks(motion, exposure, movie_name=str(path), gain_name=cfg.gain_path),
        overwrite_protect=protect,
    )
    lap("write", t)

    record = {
        "cryozssr_version": __version__,
        "method": cfg.method,
        "input": str(path),
        "stem": stem,
        "outputs": {
            "sr": sr_path.name,
            "avg": avg_path.name,
            "motion_star": motion_star.name,
            **{f"sr_{k}": v for k, v in half_paths.items()},
        },
        "command_line": command_line,
        "seed": cfg.seed,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "determinism": "same inputs, config, seed, device and torch_threads give the same bytes",
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
        "motion_refined": _jsonable(refined),  # null: not asked; RMS changes in LR px
        "timings_seconds": timings,
        "method_info": _jsonable(method_info),
        "alias_score": _jsonable(alias_score),
    }
    text = json.dumps(record, indent=1, allow_nan=False)
    with atomic_path(json_path, overwrite_protect=protect) as tmp:
        tmp.write_text(text)
    seconds = time.perf_counter() - t_start
    names = (sr_path.name, avg_path.name, *half_paths.values(), motion_star.name, json_path.name)
    row = micrograph_row(motion, exposure, sr_name=sr_path.name, metadata_name=motion_star.name)
    return MovieResult(stem, sr_path, avg_path, json_path, pixel_size, seconds, names, row)


def _average(
    frames: torch.Tensor, motion: MotionField, exposure: Exposure, method: str
) -> torch.Tensor | None:
    """The dose-weighted average, or None when ``method`` forms it in its own pass."""
    if methods.forms_average(method, motion):
        return None
    return dose_weighted_average(frames, motion, exposure=exposure)


def _run_on(
    frames: torch.Tensor,
    idx: list[int],
    motion: MotionField,
    exposure: Exposure,
    cfg: RunConfig,
    name: str,
    on_progress: Callable[[str, int, int], None] | None,
) -> torch.Tensor:
    """The method's 2x image from frames ``idx`` alone (each with its own dose), at frame 0."""
    sub_motion, sub_exposure = motion.select(idx), exposure.subset(idx)
    sub = methods.MethodInputs(
        frames=frames[idx],
        motion=sub_motion,
        average=_average(frames[idx], sub_motion, sub_exposure, cfg.method),
        exposure=sub_exposure,
    )
    with _numeric(name, cfg.method):
        image, _, _ = methods.super_resolve(sub, cfg, on_progress=on_progress)
    return image


def _score(frames, motion, exposure, cfg, halves, name, on_progress) -> dict:
    """The alias score (:mod:`cryozssr.evaluate.score`): the method run on all frames but each
    fold's held-out ones, one fit at a time (with 2 folds: the half sets), judged beside the
    folds' bilinear baseline. A movie larger than the score's square gets its fold runs and
    baselines made on the square and a margin (:func:`~cryozssr.evaluate.score.score_box`)."""
    from cryozssr.evaluate.score import (
        DEFAULT_FOLDS,
        fit_frames,
        interpolation_baselines,
        plan_folds,
        score_box,
        score_record,
    )

    t = frames.shape[0]
    try:
        held = plan_folds(t, n_folds=cfg.score_folds or DEFAULT_FOLDS)
    except ValueError as exc:
        return {"error": str(exc), "verdict": f"not scored: {exc}"}
    box, region = score_box(tuple(frames.shape[-2:]))
    y0, x0, h, w = box
    if [y0, x0, h, w] != [0, 0, *frames.shape[-2:]]:
        frames, motion = frames[:, y0 : y0 + h, x0 : x0 + w], motion.crop(box)
    if held == [list(range(0, t, 2)), list(range(1, t, 2))]:
        # fold 0 holds out the even frames: its fit is the odd half
        fits = iter([half[2 * y0 : 2 * (y0 + h), 2 * x0 : 2 * (x0 + w)] for half in halves[::-1]])
    else:
        fits = (
            _finite(_run_on(frames, fit_frames(t, f), motion, exposure, cfg, name, on_progress))
            for f in held
        )
    baselines = interpolation_baselines(frames, motion, held, exposure=exposure)
    # opt-in: a gain-corrected movie is made whole for it (a larger one is already its box)
    return score_record(
        as_tensor(frames),
        motion,
        fits=fits,
        held_out=held,
        exposure=exposure,
        baselines=baselines,
        region=region,
        origin_lr_px=(y0, x0),
    )


@functools.lru_cache(maxsize=4)
def _resolve_device(name: str) -> torch.device:
    from cryozssr.device import resolve_device

    return resolve_device(name)  # once per process (and its CPU fallback warning)


FINITE_BLOCK_ELEMENTS = 2**22
"""Values checked for NaN/Inf at a time (``torch.isfinite`` of a K3 output at once took 0.6 GB)."""


def _finite(x: torch.Tensor) -> torch.Tensor:
    _require_finite(x, "the alias score", "a fold's output")
    return x


def _require_finite(x: torch.Tensor, name: str, what: str) -> None:
    flat = x.reshape(-1)
    for start in range(0, flat.numel(), FINITE_BLOCK_ELEMENTS):
        if not bool(torch.isfinite(flat[start : start + FINITE_BLOCK_ELEMENTS]).all()):
            raise ProcessingError(f"{name}: {what} is not finite (extreme input values?)")


@contextlib.contextmanager
def _numeric(name: str, what: str):
    """Turn torch's numeric failures (a singular solve, an overflow) into a ProcessingError."""
    try:
        yield
    except (torch.linalg.LinAlgError, FloatingPointError, OverflowError) as exc:
        raise ProcessingError(f"{name}: {what} failed numerically ({exc})") from None
