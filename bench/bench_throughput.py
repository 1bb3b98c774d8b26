"""Throughput at detector sizes: seconds per stage and peak RSS per method, against the floor.

The floor is what any method must do: read the movie, FFT every frame once and form the
motion-corrected, dose-weighted average (the project's own :func:`~cryozssr.io.open_movie`, which
keeps integer counts in their stored type as the pipeline does, and
:func:`~cryozssr.motion.averages.dose_weighted_average`, with the known motion), then write it.
Every method runs through :func:`cryozssr.pipeline.movie.process_movie` (read, motion, average,
super-resolution, write) in a child process of its own, whose peak RSS comes from ``os.wait4``;
the floor is measured in the same run, so the ratio to it is the headline on a shared machine.

Movies are synthetic Poisson counts (mean ~1 count/px/frame) of a smooth scene drifting by
half-pixel steps: uint8 LZW TIFF (K3: 5760 x 4092 x 40, and square movies), and a Falcon-size EER
(4096 x 4096, 400 event frames read as 40 fractions, ``bench/_eer.py``).

    PYTHONPATH=src python bench/bench_throughput.py --sizes 1024 2048 k3 falcon-eer
    PYTHONPATH=src python bench/bench_throughput.py --sizes 1024 --src /work/main/src --label before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {"1024": (1024, 1024), "2048": (2048, 2048), "k3": (4092, 5760), "falcon-eer": (4096, 4096)}
EER_GROUP = 10
"""EER event frames per fraction of the Falcon-size movie (400 frames in 40 fractions)."""
N_FRAMES = 40
PIXEL_SIZE_ANGSTROM = 1.0
DOSE_PER_FRAME = 1.0
METHODS = ("floor", "misr", "default", "shift-add", "misr+score", "default+score")
"""``+score``: ``--half-sets --score-folds 4``, the run with its no-truth alias score."""


def drift_half_px(n_frames: int) -> np.ndarray:
    """``(t, 2)`` shifts in LR px, multiples of 1/2 (a decelerating drift), frame 0 at 0."""
    t = np.arange(n_frames)
    return np.stack([np.round(4 * np.sqrt(t)) / 2, -np.round(3 * np.sqrt(t)) / 2], -1)


def _expected_frames(shape: tuple[int, int], rng: np.random.Generator):
    """Expected counts per LR pixel of every frame ``(h, w)`` (~1 count/px/frame) and the shifts."""
    h, w = shape
    shifts = drift_half_px(N_FRAMES)
    margin = 2 * int(np.abs(shifts).max() + 2)
    hh, ww = 2 * h + 2 * margin, 2 * w + 2 * margin
    noise = rng.standard_normal((hh, ww), dtype=np.float32)
    spec = np.fft.rfft2(noise)
    ky = np.fft.fftfreq(hh)[:, None].astype(np.float32)
    kx = np.fft.rfftfreq(ww)[None, :].astype(np.float32)
    spec *= np.exp(-(ky**2 + kx**2) / 0.15**2)
    scene = np.fft.irfft2(spec, s=(hh, ww)).astype(np.float32)
    scene = np.clip(0.25 * (1 + 0.3 * scene / scene.std()), 0, None)  # counts per HR px

    def frames():
        for dy, dx in shifts:
            y0, x0 = margin - int(2 * dy), margin - int(2 * dx)
            crop = scene[y0 : y0 + 2 * h, x0 : x0 + 2 * w]
            yield crop.reshape(h, 2, w, 2).sum((1, 3))

    return frames(), shifts


def make_movie(path: Path, shape: tuple[int, int], *, seed: int = 0) -> None:
    """Write the synthetic movie and its true shifts (``<path>.json``): uint8 Poisson counts as
    LZW TIFF, or for ``.eer`` an EER file of ``EER_GROUP`` event frames per fraction."""
    import tifffile

    h, w = shape
    rng = np.random.default_rng(seed)
    expected, shifts = _expected_frames(shape, rng)
    if path.suffix == ".eer":
        from _eer import write_eer

        def events():  # at most one event per pixel and EER frame: the fraction's counts split
            for lam in expected:
                for _ in range(EER_GROUP):
                    yield (rng.random((h, w), dtype=np.float32) < lam / EER_GROUP).astype(np.uint8)

        write_eer(path, events(), n_frames=N_FRAMES * EER_GROUP, shape=shape, pixel_size_m=1e-10)
    else:
        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            counts = (rng.poisson(lam).astype(np.uint8) for lam in expected)
            tif.write(counts, shape=(N_FRAMES, h, w), dtype=np.uint8, compression="lzw")
    path.with_suffix(".json").write_text(json.dumps({"shifts_lr_px": shifts.tolist()}))


def child(method: str, movie: Path, out_dir: Path, device_name: str = "auto") -> dict:
    """Run one method (or the floor) on one movie in this process; stage seconds. ``device_name``
    as ``cryozssr run --device`` (``auto``: the GPU when there is one; the outputs are copied to
    the CPU to be written, so the seconds include the device's work)."""
    import torch

    from cryozssr.device import resolve_device

    device = resolve_device(device_name)

    from cryozssr.pipeline.config import RunConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    if method != "floor":
        from cryozssr.pipeline.movie import process_movie

        name, _, extra = method.partition("+")
        kwargs: dict = {"method": name} if name != "default" else {}
        if extra == "score":
            kwargs.update(half_sets=True, score_folds=4)
        cfg = RunConfig(
            pixel_size_angstrom=PIXEL_SIZE_ANGSTROM,
            dose_per_frame_e_per_a2=DOSE_PER_FRAME,
            **kwargs,
        )
        start = time.perf_counter()
        result = process_movie(movie, cfg, out_dir, device=device)
        record = json.loads(result.json_path.read_text())
        score = record.get("alias_score") or {}
        return {
            "method": record["method"] + ("+score" if extra else ""),
            "alias_score_region_lr_px": score.get("region_lr_px"),
            "alias_score_error": score.get("error"),
            "seconds": time.perf_counter() - start,
            "stages": record["timings_seconds"],
            "device": str(device),
        }
    from cryozssr.dose import Exposure
    from cryozssr.io import open_movie, write_mrc
    from cryozssr.motion.averages import dose_weighted_average
    from cryozssr.motion.field import MotionField

    start = time.perf_counter()
    with open_movie(movie, pixel_size_angstrom=PIXEL_SIZE_ANGSTROM) as m:
        frames = m.read(keep_integers=True, device=device)  # as the pipeline reads counts
    t_read = time.perf_counter()
    shifts = torch.tensor(
        json.loads(movie.with_suffix(".json").read_text())["shifts_lr_px"], device=device
    )
    motion = MotionField(shifts.float(), tuple(frames.shape[-2:]))
    exposure = Exposure(PIXEL_SIZE_ANGSTROM, DOSE_PER_FRAME)
    average = dose_weighted_average(frames, motion, exposure=exposure)
    t_sum = time.perf_counter()
    write_mrc(out_dir / "floor_avg.mrc", average, pixel_size_angstrom=PIXEL_SIZE_ANGSTROM)
    end = time.perf_counter()
    stages = {"read": t_read - start, "fft_weighted_sum": t_sum - t_read, "write": end - t_sum}
    return {"method": "floor", "seconds": end - start, "stages": stages, "device": str(device)}


def run_child(method: str, movie: Path, out_dir: Path, src: str, device: str = "auto") -> dict:
    """Run :func:`child` in a fresh process; its peak RSS from ``os.wait4``."""
    import tempfile

    env = {**os.environ, "PYTHONPATH": src}
    cmd = [sys.executable, __file__, "--child", method, str(movie), str(out_dir), device]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        return {"method": method, "error": stderr[-2000:]}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_gb"] = usage.ru_maxrss / 2**20  # kB on Linux
    # CPU seconds (user + system) of the child: less sensitive than wall seconds to other jobs on
    # a shared machine (not immune: threads waiting for a core may spin)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


def _commit(src: str) -> str:
    """The git commit of the measured source tree (``+dirty`` with local changes)."""
    if os.environ.get("BENCH_COMMIT"):  # a snapshot of the tree outside git
        return os.environ["BENCH_COMMIT"]
    run = dict(cwd=src, capture_output=True, text=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "."], **run).stdout.strip()
    return head + ("+dirty" if dirty else "")


def table(results: dict) -> str:
    """Markdown: seconds (ratio to the floor of the same run) and peak RSS, before and after."""
    rows = ["| size | method | before s (x floor) | after s (x floor) | after peak RSS GB |"]
    rows.append("|---|---|---|---|---|")
    runs = results.get("runs", {})
    sizes = sorted({s for r in runs.values() for s in r}, key=list(SIZES).index)
    for size in sizes:
        for method in METHODS:
            cells = []
            for label in ("before", "after"):
                out = runs.get(label, {}).get(size, {}).get("methods", {}).get(method, {})
                cells.append(
                    f"{out['seconds']:.1f} ({out.get('ratio_to_floor', 1):.2f})"
                    if "seconds" in out
                    else "-"
                )
            after = runs.get("after", {}).get(size, {}).get("methods", {}).get(method, {})
            rss = f"{after['peak_rss_gb']:.2f}" if "peak_rss_gb" in after else "-"
            if cells != ["-", "-"]:
                rows.append(f"| {size} | {method} | {cells[0]} | {cells[1]} | {rss} |")
    return "\n".join(rows)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1024", "2048", "k3"], choices=SIZES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--label", default="after")
    parser.add_argument("--data", type=Path, default=Path("/tmp/cryozssr_bench_throughput"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/throughput.json"
    )
    parser.add_argument("--device", default="auto", help="as cryozssr run --device")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "MOVIE", "OUT_DIR", "DEVICE"))
    parser.add_argument("--table", action="store_true", help="print the README table and exit")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    if args.child:
        method, movie, out_dir, device = args.child
        print(json.dumps(child(method, Path(movie), Path(out_dir), device)))
        return
    load = os.getloadavg()
    args.data.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = results.setdefault("runs", {}).setdefault(args.label, {})
    for size in args.sizes:
        h, w = SIZES[size]
        movie = args.data / f"movie_{size}.{'eer' if size == 'falcon-eer' else 'tif'}"
        if not movie.exists():
            make_movie(movie, (h, w))
        entry = {
            "commit": _commit(args.src),
            "shape": [N_FRAMES, h, w],
            "stored_gb": movie.stat().st_size / 2**30,
            "in_memory_uint8_gb": N_FRAMES * h * w / 2**30,
            "load_average_at_start": os.getloadavg(),
            "methods": {},
        }
        for method in args.methods:
            out_dir = args.data / f"out_{args.label}_{size}_{method}"
            out = run_child(method, movie, out_dir, args.src, args.device)
            entry["methods"][method] = out
            print(size, method, json.dumps(out)[:400], flush=True)
        floor = entry["methods"].get("floor", {})
        for out in entry["methods"].values():
            for key, ratio in (
                ("seconds", "ratio_to_floor"),
                ("cpu_seconds", "cpu_ratio_to_floor"),
            ):
                if floor.get(key) and key in out:
                    out[ratio] = out[key] / floor[key]
        entry["load_average_at_end"] = os.getloadavg()
        runs[size] = entry
        results["machine"] = machine(load)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
