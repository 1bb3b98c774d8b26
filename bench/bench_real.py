"""Real-data check of 2x super-resolution (issue 8): a real micrograph turned into a pseudo-movie.

Construction (honest, and what it does not test):

* The *specimen* is a real Falcon 3 counting micrograph (``../shared/data/real/epu2.9_example.mrc``,
  one summed frame, 0.6666 A/px, 300 kV, 41.2 e/A^2, defocus ~1.8 um), 2x2 box-summed to
  1.333 A/px (the HR grid) and cropped from the centre (``--size-hr``, plus a margin). Its own shot
  noise (pixel-correlated, Falcon counting MTF) is therefore *part of the specimen*: past the LR
  Nyquist (5.3 A) the specimen is mostly that frozen noise texture, a fixed pattern every frame
  sees, so recovering it is recovering real aliased content, not denoising. Its counts are never
  split into halves (its correlated noise would be shared by binomial halves).
* Frame ``t`` of the pseudo-movie is ``box_sum(Poisson(fourier_shift(c * specimen, s_t)))``:
  Poisson counts on the HR grid (``c`` sets ``--dose`` e/A^2 per frame at the HR pixel), then the
  exact 2x2 HR -> LR degradation (:func:`cryozssr.ops.box_sum`; a sum of Poisson counts is the
  Poisson count of the sum). ``s_t`` (HR px) is a seeded, smooth random-walk drift of
  ``--drift-hr-px`` total path, ``s_0 = 0``. Shifts are applied to a margin-padded crop and the
  centre cut out afterwards, so the periodic wrap of the Fourier shift stays out of the frames.
* No radiation damage, no extra detector blur and no local motion are simulated, so the exposure
  is given with dose ``None`` (no dose weighting: the exposure filter assumes damage that is not
  there).
* Motion for every method: :func:`cryozssr.motion.estimate.estimate_motion` (global) on the LR
  frames, once, the same for all. Methods are called through
  :func:`cryozssr.pipeline.methods.super_resolve`, exactly as ``cryozssr run`` calls them (zssr
  with ``--preset fast`` and ``--regime``; halves use the same seed, as ``--half-sets`` does).

Figures per method, band means of the FRC (:func:`cryozssr.evaluate.frc.register_and_frc`) in
:data:`cryozssr.evaluate.frc.FRC_BANDS` (cycles/HR px): ``half_set`` - the output of the even
frames against the output of the odd frames; ``vs_specimen`` - the full-movie output against the
specimen (the HR crop); seconds. ``HR-specimen-noisy`` is the ceiling: the HR Poisson frames (the
same realisation the LR frames were summed from) aligned with the true drift and averaged.
Half-set FRC past the LR Nyquist also rewards anything both halves compute the same way from
their below-Nyquist content (interpolation's spectral images, a network's invented detail): read
it next to ``vs_specimen``.

Usage::

    python bench/bench_real.py                                     # 1024 HR / 512 LR, ~10 min
    python bench/bench_real.py --size-hr 256 --methods bilinear,misr   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import cryozssr
from _machine import machine
from cryozssr.dose import Exposure
from cryozssr.errors import OptionError
from cryozssr.evaluate.frc import FRC_BANDS, register_and_frc
from cryozssr.io import read_image
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.estimate import estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift
from cryozssr.pipeline import methods
from cryozssr.pipeline.config import RunConfig
from cryozssr.zssr import config_from_preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "epu2.9_example.mrc"
ALL = ("bilinear", "shift-add", "misr", "mmse", "zssr/journal", "zssr/workshop")
MARGIN_HR_PX = 64


def specimen_crop(micrograph: torch.Tensor, size_hr: int, margin: int) -> torch.Tensor:
    """2x2 box sum of ``(H, W)`` then the centre ``size_hr + 2 margin`` square, float64."""
    binned = box_sum(micrograph.double())
    n = size_hr + 2 * margin
    h, w = binned.shape
    if n > min(h, w):
        raise OptionError(f"--size-hr {size_hr} (+ margin) exceeds the binned {h}x{w} image")
    y0, x0 = (h - n) // 2, (w - n) // 2
    return binned[y0 : y0 + n, x0 : x0 + n]


def drift(n_frames: int, *, total_px: float, seed: int) -> torch.Tensor:
    """Smooth random-walk trajectory ``(t, 2)`` (y, x) in HR px: persistent velocity, path ``total_px``."""
    g = torch.Generator().manual_seed(seed)
    velocity = torch.randn(2, generator=g, dtype=torch.float64)
    steps = []
    for _ in range(n_frames - 1):
        velocity = 0.85 * velocity + 0.5 * torch.randn(2, generator=g, dtype=torch.float64)
        steps.append(velocity.clone())
    steps_t = torch.stack(steps)
    steps_t *= total_px / steps_t.norm(dim=-1).sum()
    return torch.cat([torch.zeros(1, 2, dtype=torch.float64), steps_t.cumsum(0)])


def pseudo_movie(
    padded: torch.Tensor,
    shifts_hr: torch.Tensor,
    *,
    counts_per_px: float,
    margin: int,
    seed: int,
    noise_shape: torch.Tensor | None = None,
) -> torch.Tensor:
    """HR frames ``(t, n, n)`` (float32) of the padded specimen moved by ``shifts_hr``.

    ``noise_shape=None``: Poisson counts. Otherwise the expected counts plus Gaussian noise with
    that ``(n, n)`` power shape (mean 1) and the variance Poisson counting would have (the mean
    count per pixel): correlated between pixels, signal-independent, floats (not counts).
    """
    g = torch.Generator().manual_seed(seed + 1)
    rate = padded * (counts_per_px / float(padded[margin:-margin, margin:-margin].mean()))
    frames = []
    for s in shifts_hr:
        moved = fourier_shift(rate, s)[margin:-margin, margin:-margin].clamp(min=0.0)
        if noise_shape is None:
            frames.append(torch.poisson(moved, generator=g).float())
            continue
        white = torch.randn(moved.shape, generator=g, dtype=torch.float64)
        coloured = torch.fft.ifft2(torch.fft.fft2(white) * noise_shape.sqrt()).real
        frames.append((moved + counts_per_px**0.5 * coloured).float())
    return torch.stack(frames)


def measured_noise_shape(binned: torch.Tensor, size: int) -> torch.Tensor:
    """The real micrograph's own noise power shape ``(size, size)`` (``fft2`` grid, mean 1), HR grid.

    Mean periodogram of the ``size``-px tiles of the binned micrograph, averaged over 9 x 9
    neighbouring frequencies (2D shape kept: it need not be radial). Past the Thon rings' reach
    (~7.7 A: 0.17 cycles/HR px at 1.333 A) the micrograph's power is its noise; below it the
    signal dominates, so the shape there is held at its mean on the annulus just past 7.7 A (a
    counting detector's noise power spectrum is smooth and highest at low frequency).
    """
    h, w = binned.shape
    tiles = [
        binned[y : y + size, x : x + size]
        for y in range(0, h - size + 1, size)
        for x in range(0, w - size + 1, size)
    ]
    power = (
        torch.stack([torch.fft.fft2(t - t.mean()).abs().pow(2) for t in tiles]).mean(0) / size**2
    )
    power = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(power[None, None], (4, 4, 4, 4), mode="circular"), 9, stride=1
    )[0, 0]
    k = torch.fft.fftfreq(size, dtype=torch.float64)
    radius = torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    k_thon = 0.173
    held = power[(radius >= k_thon) & (radius < k_thon + 0.02)].mean()
    power = torch.where(radius < k_thon, held, power)
    return power / power.mean()


def bands(image: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    return {k: round(v, 4) for k, v in register_and_frc(image, reference).bands.items()}


def run_method(name: str, frames: torch.Tensor, motion: MotionField, exposure: Exposure, seed: int):
    """The method's 2x output for ``frames`` exactly as ``cryozssr run --method ...`` makes it."""
    method, _, regime = name.partition("/")
    cfg = RunConfig(
        method=method,
        method_config=config_from_preset("fast", **({"regime": regime} if regime else {}))
        if method == "zssr"
        else None,
        device="cpu",
        seed=seed,
    )
    average = dose_weighted_average(frames, motion, exposure=exposure)
    inputs = methods.MethodInputs(frames=frames, motion=motion, average=average, exposure=exposure)
    image, _ = methods.super_resolve(inputs, cfg)
    return image.double()


def available(name: str) -> str | None:
    """``None`` if method ``name`` can run here, else the reason it cannot."""
    method, _, regime = name.partition("/")
    if method not in methods.METHOD_FUNCTIONS:
        return f"unknown method {method!r}"
    if method == "zssr":
        try:
            config_from_preset("fast", **({"regime": regime} if regime else {}))
        except (OptionError, TypeError, ValueError) as err:
            return f"regime {regime!r} not available yet ({err})"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--micrograph", type=Path, default=DATA)
    ap.add_argument("--size-hr", type=int, default=1024, help="HR crop side (px, even)")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--dose", type=float, default=1.5, help="e/A^2 per frame")
    ap.add_argument("--drift-hr-px", type=float, default=4.0, help="total drift path, HR px")
    ap.add_argument("--methods", default=",".join(ALL))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--noise",
        choices=("poisson", "measured"),
        default="poisson",
        help="poisson: Poisson counts; measured: the micrograph's own measured noise power shape "
        "(pixel-correlated Gaussian at the same variance, floats)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results/real.json"))
    args = ap.parse_args()
    if not args.micrograph.exists():
        sys.exit(f"no micrograph at {args.micrograph} (the shared data is not here)")
    if args.size_hr % 2 or args.size_hr < 64:
        sys.exit("--size-hr must be even and >= 64")

    load_start = os.getloadavg()
    t_all = time.perf_counter()
    micrograph, px = read_image(args.micrograph)
    px_hr = 2 * (px or 0.6666)
    padded = specimen_crop(micrograph, args.size_hr, MARGIN_HR_PX)
    specimen = padded[MARGIN_HR_PX:-MARGIN_HR_PX, MARGIN_HR_PX:-MARGIN_HR_PX]
    counts_per_px = args.dose * px_hr**2
    truth_hr = drift(args.frames, total_px=args.drift_hr_px, seed=args.seed)
    noise_shape = None
    if args.noise == "measured":
        noise_shape = measured_noise_shape(box_sum(micrograph.double()), args.size_hr)
    hr = pseudo_movie(
        padded,
        truth_hr,
        counts_per_px=counts_per_px,
        margin=MARGIN_HR_PX,
        seed=args.seed,
        noise_shape=noise_shape,
    )
    lr = box_sum(hr)
    exposure = Exposure(pixel_size_angstrom=2 * px_hr, dose_per_frame_e_per_a2=None)
    t0 = time.perf_counter()
    motion = estimate_motion(lr)
    motion_seconds = time.perf_counter() - t0
    err = motion.global_shifts_px.double() - truth_hr / 2
    motion_rms = {  # LR px; a constant offset only moves the output and FRC registers it away
        "rms": round(float(err.norm(dim=-1).pow(2).mean().sqrt()), 4),
        "rms_after_mean_offset": round(
            float((err - err.mean(0)).norm(dim=-1).pow(2).mean().sqrt()), 4
        ),
    }
    print(
        f"pseudo-movie {args.frames} x {args.size_hr // 2}^2 LR, {counts_per_px:.2f} counts/HR px"
        f"/frame; motion {motion_seconds:.1f} s, error vs truth (LR px) {motion_rms}",
        flush=True,
    )

    even, odd = list(range(0, args.frames, 2)), list(range(1, args.frames, 2))
    rows: dict[str, dict] = {}

    def hr_average(idx: list[int]) -> torch.Tensor:
        return fourier_shift(hr[idx].double(), -truth_hr[idx]).mean(0)

    rows["HR-specimen-noisy"] = {
        "half_set": bands(hr_average(even), hr_average(odd)),
        "vs_specimen": bands(hr_average(list(range(args.frames))), specimen),
        "seconds": None,
    }
    for name in [m for m in args.methods.split(",") if m]:
        reason = available(name)
        if reason is not None:
            print(f"skipping {name}: {reason}", flush=True)
            rows[name] = {"skipped": reason}
            continue
        t0 = time.perf_counter()
        full = run_method(name, lr, motion, exposure, args.seed)
        t_full = time.perf_counter() - t0
        print(f"{name}: full movie {t_full:.0f} s; now the even and odd halves", flush=True)
        halves = [
            run_method(name, lr[idx], motion.select(idx), exposure.subset(idx), args.seed)
            for idx in (even, odd)
        ]
        t_halves = time.perf_counter() - t0 - t_full
        rows[name] = {
            "half_set": bands(halves[0], halves[1]),
            "vs_specimen": bands(full, specimen),
            "seconds": {"full": round(t_full, 1), "both_halves": round(t_halves, 1)},
        }
        print(f"{name}: {rows[name]}", flush=True)

    print_table(rows)
    summary = {
        "cryozssr_version": cryozssr.__version__,
        "command": "python " + " ".join(sys.argv),
        "construction": {
            "specimen": f"{args.micrograph.name}, 2x2 box-summed to {px_hr:.4f} A/px, centre "
            f"{args.size_hr}^2 crop; its own (pixel-correlated) shot noise is part of the specimen",
            "frames": "box_sum(Poisson(fourier_shift(c * specimen, s_t))), exact 2x2 HR->LR"
            if args.noise == "poisson"
            else "box_sum(fourier_shift(c * specimen, s_t) + sqrt(c) * n_t), n_t Gaussian with the "
            "micrograph's own measured 2D noise power shape (mean 1), exact 2x2 HR->LR",
            "dose_per_frame_e_per_a2": args.dose,
            "counts_per_hr_px_per_frame": round(counts_per_px, 3),
            "n_frames": args.frames,
            "drift_hr_px": [[round(v, 3) for v in s] for s in truth_hr.tolist()],
            "exposure": "dose None: no damage simulated, so no dose weighting",
            "motion": "estimate_motion (global) on the LR frames, the same for every method",
            "motion_error_vs_truth_lr_px": motion_rms,
            "zssr": "pipeline.methods.super_resolve, preset fast; halves use the same seed",
            "ceiling": "HR-specimen-noisy: the HR Poisson frames aligned with the true drift",
        },
        "bands_cycles_per_hr_px": FRC_BANDS,
        "rows": rows,
        "motion_seconds": round(motion_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_all, 1),
        "machine": machine(load_start),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out} ({summary['total_seconds']:.0f} s)")


def print_table(rows: dict[str, dict]) -> None:
    """One line per row: half-set FRC and FRC vs the specimen in the three bands, then seconds."""
    short = {"below_nyquist": "<Nyq", "nyquist_1.33x": "Nyq-1.33x", "1.33x_1.67x": "1.33-1.67x"}
    cols = [f"half {short[n]}" for n in FRC_BANDS] + [f"truth {short[n]}" for n in FRC_BANDS]
    print(f"{'method':18s} " + " ".join(f"{c:>16s}" for c in cols) + "   s full  s halves")
    for name, row in rows.items():
        if "skipped" in row:
            print(f"{name:18s} skipped: {row['skipped']}")
            continue
        vals = [row["half_set"].get(n, float("nan")) for n in FRC_BANDS]
        vals += [row["vs_specimen"].get(n, float("nan")) for n in FRC_BANDS]
        sec = row["seconds"] or {"full": "-", "both_halves": "-"}
        print(
            f"{name:18s} "
            + " ".join(f"{v:16.3f}" for v in vals)
            + f" {sec['full']:>8} {sec['both_halves']:>9}"
        )


if __name__ == "__main__":
    main()
