"""The papers' Cryo-ZSSR network (issue 17): which part of the design decides whether it beats bilinear.

Every row varies ONE factor against the same base and is scored the same way: band-mean FRC against
the noiseless truth (``truth_ctf``, frame-0 position) after sub-pixel registration
(:func:`cryozssr.evaluate.frc.register_and_frc`, the bands :data:`~cryozssr.evaluate.frc.FRC_BANDS`
of the headline evaluation), also as a ratio to the HR dose-weighted average (the ceiling).
References on the same movies: ``bilinear`` (LR dose-weighted average, bilinear 2x) and ``misr``.

Base: ``--regime journal --preset fast``, Fourier-shifted reference-aligned averages (today's
inputs), today's journal target (early half aligned to the references' mean position). Factors:

* ``preset``: ``paper`` (64 channels, 2 blocks, 256/128 crops), capped at ``--paper-iterations``;
  seconds per iteration reported, the full cost extrapolated;
* ``movie``: radiation damage off (the reference for the dose rows), dose x10 and x1000 (damage
  off: at these doses damage would erase everything; x1000 is practically noiseless);
* ``inputs=grouped``: :func:`cryozssr.zssr.subpixel.fraction_grouped_averages` (frames grouped
  by the fractional part of their shift, aligned by whole pixels) for the training inputs (whole
  even pixels, so the 2x downsampled inputs stay coherent) and the inference inputs;
* ``target=paper``: the journal paper's target (early half aligned to ITS centre frame);
* training length, learning-rate rule (fixed rate), crop size, ensemble off, back-projection off,
  the loss (MAE only; workshop's MSE + TV pairs);
* diagnostics: ``misr`` run on the network's own K inference inputs (what those inputs can give
  past the Nyquist to any estimator); the FRC of the journal training target (LR grid) against the
  truth in the band the network is taught to add ([0.25, 0.5) cycles/LR px).

Motion: the simulation's exact global trajectory, for every method (the papers use global motion).

    python bench/bench_faithful.py --rows all          # the table of bench/results/faithful.json
    python bench/bench_faithful.py --rows base,grouped --size-hr 256   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

import cryozssr
from _machine import machine
from cryozssr.baselines import misr
from cryozssr.dose import Exposure
from cryozssr.evaluate.frc import FRC_BANDS, register_and_frc
from cryozssr.motion.averages import (
    choose_references,
    dose_weighted_average,
    reference_aligned_averages,
)
from cryozssr.motion.field import MotionField
from cryozssr.ops import fourier_shift
from cryozssr.simulate import SimulationConfig, simulate_movie
from cryozssr.zssr import config_from_preset
from cryozssr.zssr.api import fit_and_predict
from cryozssr.zssr.network import upsample2x
from cryozssr.zssr.pairs import TrainingPair, downsample2x, training_pair
from cryozssr.zssr.subpixel import fraction_grouped_averages, grouped_training_pair

MOVIES = {
    "base": {},
    "no_damage": {"radiation_damage": False},
    "dose_x10": {"radiation_damage": False, "dose_scale": 10.0},
    "dose_x1000": {"radiation_damage": False, "dose_scale": 1000.0},
}
# name: (movie, inputs, target, preset, overrides)
ROWS: dict[str, tuple[str, str, str, str, dict]] = {
    "base": ("base", "fourier", "today", "fast", {}),
    "dose_x1000": ("dose_x1000", "fourier", "today", "fast", {}),
    "dose_x1000+grouped": ("dose_x1000", "grouped", "today", "fast", {}),
    "grouped": ("base", "grouped", "today", "fast", {}),
    "paper_preset_capped": ("base", "fourier", "today", "paper", {}),
    "target_paper": ("base", "fourier", "paper", "fast", {}),
    "no_damage": ("no_damage", "fourier", "today", "fast", {}),
    "dose_x10": ("dose_x10", "fourier", "today", "fast", {}),
    "loss_mae_only": ("base", "fourier", "today", "fast", {"fourier_weight": 0.0}),
    "no_backprojection": ("base", "fourier", "today", "fast", {"backprojection_iterations": 0}),
    "no_ensemble": ("base", "fourier", "today", "fast", {"ensemble": False}),
    "workshop": ("base", "fourier", "today", "fast", {"regime": "workshop"}),
    "iterations_50": ("base", "fourier", "today", "fast", {"max_iterations": 50}),
    "iterations_300": ("base", "fourier", "today", "fast", {"max_iterations": 300}),
    "lr_fixed": ("base", "fourier", "today", "fast", {"lr_check_every": 10**6}),
    "crop_64": ("base", "fourier", "today", "fast", {"hr_crop": 64}),
    "crop_256": ("base", "fourier", "today", "fast", {"hr_crop": 256}),
    "no_damage+grouped": ("no_damage", "grouped", "today", "fast", {}),
    "dose_x10+grouped": ("dose_x10", "grouped", "today", "fast", {}),
}


def simulation(size_hr: int, frames: int, particles: int, movie: str) -> SimulationConfig:
    spec = dict(MOVIES[movie])
    scale = spec.pop("dose_scale", 1.0)
    known = {f.name for f in fields(SimulationConfig)}
    if "noise_model" in known:  # keep today's benchmark: independent Poisson counts
        spec["noise_model"] = "poisson"
    base = SimulationConfig(size_hr=size_hr, frames=frames, particles=particles)
    return replace(base, dose_per_frame_e_per_a2=base.dose_per_frame_e_per_a2 * scale, **spec)


def bands(image: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    return {k: round(v, 4) for k, v in register_and_frc(image.float(), truth).bands.items()}


def global_motion(motion: MotionField) -> MotionField:
    return MotionField(motion.global_shifts_px.float(), tuple(motion.image_shape))


def journal_pair(frames, motion, *, inputs: str, target: str, references) -> TrainingPair:
    """The journal training pair with the row's inputs and target (counts, LR grid target)."""
    t = frames.shape[0]
    late, early = list(range(t // 2, t)), list(range(t // 2))
    g = motion.global_shifts_px.float()
    if inputs == "grouped" and target == "today":  # the library's `inputs="grouped"` pair
        return TrainingPair(
            *grouped_training_pair(frames, motion, regime="journal", n_groups=len(references))
        )
    if inputs == "grouped":
        avg, pos = fraction_grouped_averages(
            frames, motion, n_groups=len(references), pixel=2, frame_indices=late
        )
        x = downsample2x(avg)
        centre = pos.mean(0).float()
    else:
        x = downsample2x(reference_aligned_averages(frames, motion, references, frame_indices=late))
        centre = g[list(references)].mean(0)
    if target == "paper":  # the early half aligned to its own centre frame
        y = reference_aligned_averages(
            frames, motion, [early[len(early) // 2]], frame_indices=early
        )
    else:  # where the inputs' base sits (today's rule)
        y = fourier_shift(
            reference_aligned_averages(frames, motion, [0], frame_indices=early), centre
        )
    h, w = x.shape[-2:]
    return TrainingPair(inputs=x, targets=y[..., : 2 * h, : 2 * w])


def inference_inputs(frames, motion, *, inputs: str, references):
    """``(K, h, w)`` inputs and their ``(K, 2)`` specimen positions (LR px, vs frame 0)."""
    if inputs == "grouped":
        avg, pos = fraction_grouped_averages(frames, motion, n_groups=len(references), pixel=1)
        return avg, pos.float()
    return (
        reference_aligned_averages(frames, motion, references),
        motion.global_shifts_px.float()[list(references)],
    )


def input_information(x: torch.Tensor, positions: torch.Tensor, movie: dict) -> dict:
    """``misr`` on the network's K inference inputs: what they carry past the Nyquist, for any estimator.

    Each input is scaled to the counts of ``t / K`` frames (misr's noise model is Poisson counts:
    an average of n frames has 1/n of their variance); exact for grouped averages (disjoint
    frames), generous for Fourier-shifted ones (whose K copies share one noise).
    """
    n = movie["frames"].shape[0] / x.shape[0]
    motion = MotionField(positions - positions[0], tuple(x.shape[-2:]))
    return bands(misr(x * n, motion) / n, movie["truth"])


def run_row(name, spec, movie, *, seed, paper_iterations):
    movie_key, inputs, target, preset, overrides = spec
    overrides = dict(overrides)
    regime = overrides.pop("regime", "journal")
    if preset == "paper":
        overrides["max_iterations"] = paper_iterations
    config = config_from_preset(preset, regime=regime, **overrides)
    frames, motion, truth = movie["frames"], movie["motion"], movie["truth"]
    references = choose_references(frames.shape[0], config.n_inputs, mode=config.references)
    x, positions = inference_inputs(frames, motion, inputs=inputs, references=references)
    if regime == "journal":
        pair = journal_pair(frames, motion, inputs=inputs, target=target, references=references)
    else:
        pair = training_pair(frames, motion, regime=regime, references=references)
    anchor = reference_aligned_averages(frames, motion, [0])[0]
    result = fit_and_predict(x, pair, anchor, config=config, seed=seed)
    h = result.history
    losses = h.losses
    n = max(1, min(10, len(losses) // 4))
    row = {
        "movie": movie_key,
        "inputs": inputs,
        "target": target if regime == "journal" else "workshop",
        "preset": preset,
        "overrides": {"regime": regime, **overrides},
        "frc": bands(result.image, truth),
        "iterations": h.iterations,
        "stopped_by": h.stopped_by,
        "lr_steps": h.lr_steps,
        "loss_first10_mean": sum(losses[:n]) / n,
        "loss_last10_mean": sum(losses[-n:]) / n,
        "seconds_training": round(h.seconds_training, 1),
        "seconds_inference": round(h.seconds_inference, 1),
        "seconds_per_iteration": round(h.seconds_training / max(h.iterations, 1), 3),
    }
    if (
        regime == "journal"
    ):  # SNR of what the network is taught to add (LR grid, above LR/2 Nyquist)
        truth_lr = downsample2x(truth)
        teach = {"teaching_band": (0.25, 0.5), "below": (0.02, 0.25)}
        res = register_and_frc(pair.targets[0].float(), truth_lr, bands=teach)
        row["target_frc_vs_truth_lr"] = {k: round(v, 4) for k, v in res.bands.items()}
    if preset == "paper":
        row["extrapolated_seconds_training_250_iterations"] = round(
            250 * row["seconds_per_iteration"], 0
        )
    return row, x, positions


def dataset_level(args, seeds: list[int]) -> dict:
    """Train once on movie ``--pretrain-seed``, fine-tune on each of ``seeds``; vs per-movie training.

    The checkpoint goes through a file (:mod:`cryozssr.io.checkpoint`), as ``cryozssr run
    --zssr-checkpoint`` does. Seconds are training + inference per movie, wall-clock and process
    CPU time (the CPU time does not depend on how many other processes share the machine).
    """
    import tempfile

    from cryozssr.io.checkpoint import load_checkpoint, save_checkpoint
    from cryozssr.zssr import super_resolve

    sim = simulation(args.size_hr, args.frames, args.particles, "base")
    config = config_from_preset("fast", regime="journal")
    exp_lr = Exposure(sim.pixel_size_lr_angstrom, sim.dose_per_frame_e_per_a2)

    def movie(seed: int):
        m = simulate_movie(sim, seed=seed)
        return m.lr_counts.float(), global_motion(m.motion.scaled(0.5)), m.truth_ctf.float()

    def timed(*a, **k):
        start = time.process_time()
        result = super_resolve(*a, **k)
        return result, time.process_time() - start

    def entry(timed_result, truth) -> dict:
        result, cpu_seconds = timed_result
        h = result.history
        return {
            "cpu_seconds_total": round(cpu_seconds, 1),
            "frc": bands(result.image, truth),
            "iterations": h.iterations,
            "seconds_training": round(h.seconds_training, 1),
            "seconds_inference": round(h.seconds_inference, 1),
            "seconds_total": round(h.seconds_training + h.seconds_inference, 1),
        }

    frames, motion, _ = movie(args.pretrain_seed)
    first, first_cpu = timed(frames, motion, exposure=exp_lr, config=config, seed=0)
    record: dict = {
        "pretrain_seed": args.pretrain_seed,
        "config": config.to_dict(),
        "pretrain": {
            "iterations": first.history.iterations,
            "seconds_training": round(first.history.seconds_training, 1),
            "cpu_seconds_total": round(first_cpu, 1),
        },
        "movies": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(f"{tmp}/zssr.pt", first.model_state, config=config)
        state = load_checkpoint(path, config=config)
    for seed in seeds:
        frames, motion, truth = movie(seed)
        rows = {"per_movie": entry(timed(frames, motion, exposure=exp_lr, config=config), truth)}
        for n in args.fine_tune_iterations:
            cfg = replace(config, fine_tune_iterations=n)
            run = timed(frames, motion, exposure=exp_lr, config=cfg, initial_state=state)
            rows[f"fine_tune_{n}"] = entry(run, truth)
        for key, row in rows.items():
            row["frc_minus_per_movie"] = {
                b: round(row["frc"][b] - rows["per_movie"]["frc"][b], 4) for b in row["frc"]
            }
            row["speed_up_wall"] = round(
                rows["per_movie"]["seconds_total"] / row["seconds_total"], 2
            )
            row["speed_up_cpu"] = round(
                rows["per_movie"]["cpu_seconds_total"] / row["cpu_seconds_total"], 2
            )
            print(f"dataset-level seed {seed} {key}: {row}", flush=True)
        record["movies"][f"seed{seed}"] = rows
    return record


def table(out: dict) -> str:
    """The README's markdown table of the rows in ``out`` (FRC past the Nyquist, both bands)."""
    past = ("nyquist_1.33x", "1.33x_1.67x")
    lines = [
        "| row (one factor vs base) | movie | FRC Nyq-1.33x / 1.33x-1.67x | bilinear, same movie |"
        " misr on the K inputs | target FRC, taught band | iterations | s train + infer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in out["rows"].items():
        f, b, m = r["frc"], r["bilinear_same_movie"], r["misr_on_network_inputs"]
        teach = r.get("target_frc_vs_truth_lr", {}).get("teaching_band")
        lines.append(
            f"| {name.rsplit('/seed', 1)[0]} | {r['movie']} | {f[past[0]]:.3f} / {f[past[1]]:.3f} |"
            f" {b[past[0]]:.3f} / {b[past[1]]:.3f} | {m[past[0]]:.3f} / {m[past[1]]:.3f} |"
            f" {'-' if teach is None else f'{teach:.2f}'} | {r['iterations']} ({r['stopped_by']}) |"
            f" {r['seconds_training']:.0f} + {r['seconds_inference']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="all", help="comma-separated row names, or 'all'")
    ap.add_argument("--size-hr", type=int, default=512, help="HR side (LR = half)")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--particles", type=int, default=25)
    ap.add_argument("--seeds", default="0", help="comma-separated movie seeds")
    ap.add_argument("--paper-iterations", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--dataset-level",
        action="store_true",
        help="run only the dataset-level network experiment (pretrain + fine-tune) on --seeds",
    )
    ap.add_argument("--pretrain-seed", type=int, default=1)
    ap.add_argument(
        "--reinfo", action="store_true", help="recompute misr-on-inputs for the stored rows"
    )
    ap.add_argument("--fine-tune-iterations", type=int, nargs="+", default=[30])
    ap.add_argument("--out", type=Path, default=Path("bench/results/faithful.json"))
    ap.add_argument("--table", action="store_true", help="print the README table of --out; exit")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    torch.set_num_threads(args.threads)
    names = list(ROWS) if args.rows == "all" else [r for r in args.rows.split(",") if r]
    load_start = os.getloadavg()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    out: dict = {
        **previous,
        "bench": "faithful",
        "cryozssr_version": cryozssr.__version__,
        "commands": [
            *previous.get("commands", [previous["command"]] if "command" in previous else []),
            "python bench/bench_faithful.py "
            + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        ],
        "bands_cycles_per_hr_px": FRC_BANDS,
        "movies": previous.get("movies", {}),
        "rows": previous.get("rows", {}),
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.reinfo:  # recompute the misr-on-inputs diagnostic of the stored rows
        movies: dict[tuple, dict] = {}
        for key, row in out["rows"].items():
            seed = int(key.rsplit("/seed", 1)[1])
            if (row["movie"], seed) not in movies:
                sim = simulation(args.size_hr, args.frames, args.particles, row["movie"])
                m = simulate_movie(sim, seed=seed)
                movies[(row["movie"], seed)] = {
                    "frames": m.lr_counts.float(),
                    "motion": global_motion(m.motion.scaled(0.5)),
                    "truth": m.truth_ctf.float(),
                }
            movie = movies[(row["movie"], seed)]
            k = config_from_preset(row["preset"]).n_inputs
            refs = choose_references(movie["frames"].shape[0], k, mode="spread")
            x, pos = inference_inputs(
                movie["frames"], movie["motion"], inputs=row["inputs"], references=refs
            )
            row["misr_on_network_inputs"] = input_information(x, pos, movie)
            print(key, row["misr_on_network_inputs"], flush=True)
        args.out.write_text(json.dumps(out, indent=1))
        return
    if args.dataset_level:
        out["dataset_level"] = dataset_level(args, seeds)
        out["dataset_level"]["machine"] = machine(load_start)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
        return
    for seed in seeds:
        cache: dict[str, dict] = {}
        for name in names:
            spec = ROWS[name]
            key = spec[0]
            if key not in cache:
                sim = simulation(args.size_hr, args.frames, args.particles, key)
                t0 = time.perf_counter()
                m = simulate_movie(sim, seed=seed)
                frames = m.lr_counts.float()
                motion = global_motion(m.motion.scaled(0.5))
                truth = m.truth_ctf.float()
                damage = sim.radiation_damage
                exp_lr = Exposure(
                    sim.pixel_size_lr_angstrom, sim.dose_per_frame_e_per_a2 if damage else None
                )
                exp_hr = Exposure(
                    sim.pixel_size_hr_angstrom, sim.dose_per_frame_e_per_a2 if damage else None
                )
                ceiling = dose_weighted_average(
                    m.hr_counts.float(), global_motion(m.motion), exposure=exp_hr
                )
                lr_dw = dose_weighted_average(frames, motion, exposure=exp_lr)
                t1 = time.perf_counter()
                sr_misr = misr(frames, motion, exposure=exp_lr)
                seconds_misr = time.perf_counter() - t1
                refs = {
                    "hr_average_ceiling": bands(ceiling, truth),
                    "bilinear": bands(upsample2x(lr_dw) / 4, truth),
                    "misr": bands(sr_misr, truth),
                }
                cache[key] = {"frames": frames, "motion": motion, "truth": truth, "refs": refs}
                out["movies"][f"{key}/seed{seed}"] = {
                    "simulation": sim.to_dict(),
                    "seconds_simulation": round(t1 - t0, 1),
                    "seconds_misr": round(seconds_misr, 1),
                    "references": refs,
                }
                print(f"movie {key} seed {seed}: {refs}", flush=True)
            movie = cache[key]
            row, x, positions = run_row(
                name, spec, movie, seed=seed, paper_iterations=args.paper_iterations
            )
            row["misr_on_network_inputs"] = input_information(x, positions, movie)
            top = movie["refs"]["hr_average_ceiling"]
            row["ratio_to_ceiling"] = {b: round(row["frc"][b] / top[b], 3) for b in top}
            row["bilinear_same_movie"] = movie["refs"]["bilinear"]
            out["rows"][f"{name}/seed{seed}"] = row
            print(
                f"{name:22s} seed {seed}: {row['frc']}  it {row['iterations']} "
                f"({row['seconds_training']}+{row['seconds_inference']} s) "
                f"misr-on-inputs {row['misr_on_network_inputs']}",
                flush=True,
            )
            out["machine"] = machine(load_start)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
