"""Is the frames' noise the same in every frame, as the alias score assumes? And what does it
cost the score's measure of the frames' aliased signal where it is not?

The score (:mod:`cryozssr.evaluate._alias_folds`) measures the held-out frames' aliased signal
as their power in the 3 alias directions less ``3 sigma^2``, with ``sigma^2`` the per-frame noise
power of the ``n - 4`` directions no alias reaches: unbiased when every frame has the same noise
power. Here, per LR shell, each frame's own noise power ``sigma_t^2`` is estimated from those
residuals, ``E |r_t|^2 = sum_s |M_ts|^2 sigma_s^2`` (``M = I - Q Q^H``, ``Q`` the 4 alias
directions' basis; least squares over the shell's frequencies, ``g_t = sigma_t^2 / mean``), and
the score's aliased SNR (its ``aliased_signal_snr``: ``sum (|Pi Y|^2 - 3 sigma^2) / sum 3
sigma^2`` over the headline band and the folds) is computed twice: as the score does, and with
the noise the 3 alias directions actually receive from frames whose noise differs,
``sigma^2 (n - 4) sum_t P3_tt g_t / sum_t M_tt g_t`` in place of ``3 sigma^2`` (``P3`` the
projector on the alias directions with the in-band one removed).

    python bench/bench_frame_noise.py --sets sim --movies 3 4 --out x.json        # and --no-ice
    python bench/bench_frame_noise.py --merge a.json b.json --out bench/results/frame_noise.json

A diagnostic of the statistic, not a method: nothing in the package uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_score
import cryozssr
from _machine import machine
from cryozssr.evaluate._alias_folds import (
    _ROW_CHUNK,
    N_SHELLS,
    _Model,
    alias_basis,
    measure_frames,
)
from cryozssr.evaluate._alias_result import HEADLINE_BAND, shell_centres_k_lr
from cryozssr.evaluate.score import DEFAULT_FOLDS, plan_folds


def _bases(side, model, idx, rows):
    """The score's alias basis ``Q`` and its in-band direction ``u``, normalised, ``(rows, w, n)``."""
    q, u = alias_basis(model, side.shifts_px[idx] - side.offsets[idx], rows)
    u = u.permute(1, 2, 0)
    return q, u / u.norm(dim=-1, keepdim=True).clamp(min=1e-30)


def frame_noise_profile(side, exposure) -> torch.Tensor:
    """``(N_SHELLS, t)`` each frame's noise power over the mean, per LR shell."""
    hc, wc = side.crop
    t = side.spectra.shape[0]
    idx = list(range(t))
    model = _Model(hc, wc, idx, None, exposure, side.spectra.device, torch.complex128)
    power = torch.zeros(N_SHELLS, t, dtype=torch.float64)
    gram = torch.zeros(N_SHELLS, t, t, dtype=torch.float64)
    keep = side.use.expand(hc, wc)
    shell = side.shell.expand(hc, wc)
    for r0 in range(0, hc, _ROW_CHUNK):
        sl = slice(r0, r0 + _ROW_CHUNK)
        q, _ = _bases(side, model, idx, sl)
        m = torch.eye(t, dtype=q.dtype) - q @ q.conj().transpose(-2, -1)
        y = side.spectra[:, sl].to(torch.complex128).permute(1, 2, 0)[..., None]
        r = (m @ y)[..., 0].abs().pow(2)
        k, s = keep[sl], shell[sl][keep[sl]]
        power.index_add_(0, s, r[k])
        gram.index_add_(0, s, m[k].abs().pow(2))
    g = torch.ones(N_SHELLS, t, dtype=torch.float64)
    for i in range(N_SHELLS):
        if power[i].sum() > 0:
            sol = torch.linalg.lstsq(gram[i], power[i][:, None]).solution[:, 0]
            g[i] = sol / sol.mean()
    return g


def aliased_snr(side, exposure, g: torch.Tensor | None) -> float:
    """The score's ``aliased_signal_snr`` over the headline band, with the frames' noise taken as
    equal (``g`` None: the score's) or as ``g``."""
    hc, wc = side.crop
    keep = side.use.expand(hc, wc)
    shell = side.shell.expand(hc, wc)
    centres = shell_centres_k_lr()
    band = torch.tensor([HEADLINE_BAND[0] <= k < HEADLINE_BAND[1] for k in centres])
    signal = noise = 0.0
    for fold in side.folds:
        idx, n = fold.held, len(fold.held)
        model = _Model(hc, wc, idx, fold.fit, exposure, side.spectra.device, torch.complex128)
        for r0 in range(0, hc, _ROW_CHUNK):
            sl = slice(r0, r0 + _ROW_CHUNK)
            k = keep[sl] & band[shell[sl]]
            if not k.any():
                continue
            q, u = _bases(side, model, idx, sl)
            y = side.spectra[idx, sl].to(torch.complex128).permute(1, 2, 0)[..., None]
            in_span = (q.conj().transpose(-2, -1) @ y).abs().pow(2).sum((-2, -1))
            along_u = (u.conj()[..., None, :] @ y)[..., 0, 0].abs().pow(2)
            sigma2 = ((y.abs().pow(2).sum((-2, -1)) - in_span) / (n - 4)).real
            alias = (in_span - along_u).real
            factor = torch.full_like(sigma2, 3.0)
            if g is not None:
                gt = g[shell[sl]][..., idx]  # (rows, w, n)
                qq = (q.abs().pow(2)).sum(-1)  # diag of Q Q^H
                p3 = qq - u.abs().pow(2)  # diag of the alias-only projector
                factor = (n - 4) * (p3 * gt).sum(-1) / ((1 - qq) * gt).sum(-1)
            signal += float((alias - factor * sigma2)[k].sum())
            noise += float((factor * sigma2)[k].sum())
    return signal / noise


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    detector, noise_model = bench_score.DETECTOR_SETS[args.sets]
    args.local_motion_a, args.seed = None, 0
    load_start = os.getloadavg()
    movies = []
    for i in args.movies:
        t0 = time.perf_counter()
        lr, motion, exposure, _, _ = bench_score.sim_movie(
            i, args, detector=detector, noise_model=noise_model
        )
        held = plan_folds(lr.shape[0], n_folds=DEFAULT_FOLDS)
        side = measure_frames(lr, motion.global_shifts_px, held_out=held, exposure=exposure)
        g = frame_noise_profile(side, exposure)
        centres = shell_centres_k_lr()
        band = [i for i, k in enumerate(centres) if HEADLINE_BAND[0] <= k < HEADLINE_BAND[1]]
        gb = g[band].mean(0)
        quarter = max(1, len(gb) // 4)
        entry = {
            "movie": i,
            "noise_first_quarter_over_mean": round(float(gb[:quarter].mean()), 4),
            "noise_last_quarter_over_mean": round(float(gb[-quarter:].mean()), 4),
            "noise_per_frame_over_mean": [round(float(v), 4) for v in gb],
            "aliased_snr_as_scored": round(aliased_snr(side, exposure, None), 5),
            "aliased_snr_frames_own_noise": round(aliased_snr(side, exposure, g), 5),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(entry), flush=True)
        movies.append(entry)
    return {
        "cryozssr_version": cryozssr.__version__,
        "command": "python " + " ".join(sys.argv),
        "set": args.sets
        + ("_no_ice" if args.no_ice else "")
        + ("_no_damage" if args.no_damage else ""),
        "sizes": f"{args.size_lr}^2 LR, {args.frames} frames, {args.particles} particles",
        "per_movie": movies,
        "machine": machine(load_start),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="sim", choices=sorted(bench_score.DETECTOR_SETS))
    ap.add_argument("--movies", type=int, nargs="+", default=[3])
    ap.add_argument("--size-lr", type=int, default=384)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--particles", type=int, default=40)
    ap.add_argument("--dose", type=float, default=1.5)
    ap.add_argument("--no-ice", action="store_true")
    ap.add_argument("--no-damage", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--merge", type=Path, nargs="*", help="merge these outputs into --out, stop")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.merge:
        runs = [json.loads(p.read_text()) for p in args.merge]
        args.out.write_text(json.dumps({"runs": runs}, indent=1))
        return
    args.out.write_text(json.dumps(run(args), indent=1))


if __name__ == "__main__":
    main()
