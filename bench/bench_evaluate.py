"""Speed of the evaluation core against the teamtomo packages it replaces or builds on.

* FRC (``cryozssr.register.frc_curve``, one ``bincount`` per sum) vs torch-fourier-shell-correlation's
  ``fsc`` (a Python loop over shells) at 1024^2 and 2048^2;
* FSC of 3D maps (``cryozssr.evaluate.fsc_curve``) vs the same at 128^3 and 256^3;
* Fourier insertion (``cryozssr.evaluate.insertion.insert_slices``, ``index_add_``) vs
  torch-fourier-slice's ``insert_central_slices_rfft_3d_multichannel`` (256 views, 2 channels, p=128);
* a CTF fit (``cryozssr.evaluate.fit_ctf``) of a 4096^2 micrograph with 512 px tiles.

    /work/venv/bin/python bench/bench_evaluate.py [--threads N]

Writes ``bench/out/bench_evaluate.json`` and prints it. Seconds are the best of 3 runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch_fourier_shell_correlation import fsc as tfsc
from torch_fourier_slice import insert_central_slices_rfft_3d_multichannel

from cryozssr.evaluate import fit_ctf, fsc_curve, relion_euler_to_matrix
from cryozssr.evaluate.insertion import insert_slices
from cryozssr.register import frc_curve

OUT = Path(__file__).parent / "out" / "bench_evaluate.json"


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(min(times), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    out: dict = {"machine": platform.processor() or platform.machine(),
                 "threads": torch.get_num_threads(), "torch": torch.__version__}  # fmt: skip
    for n in (1024, 2048):
        a, b = torch.randn(2, n, n, generator=g)
        out[f"frc_{n}"] = {
            "cryozssr_s": best_of(lambda a=a, b=b: frc_curve(a, b)),
            "torch_fourier_shell_correlation_s": best_of(lambda a=a, b=b: tfsc(a, b), 1),
        }
    for n in (128, 256):
        a, b = torch.randn(2, n, n, n, generator=g)
        out[f"fsc_{n}"] = {
            "cryozssr_s": best_of(lambda a=a, b=b: fsc_curve(a, b)),
            "torch_fourier_shell_correlation_s": best_of(lambda a=a, b=b: tfsc(a, b), 1),
        }
    p = 128
    rot = relion_euler_to_matrix(torch.rand(256, 3, generator=g, dtype=torch.float64) * 180)
    x = torch.randn(256, 2, p, p // 2 + 1, generator=g, dtype=torch.complex64)
    out["insert_256_views_p128"] = {
        "cryozssr_s": best_of(lambda: insert_slices(x, rot.float(), size_px=p)),
        "torch_fourier_slice_s": best_of(
            lambda: insert_central_slices_rfft_3d_multichannel(x, (p, p, p), rot.float()), 1
        ),
    }
    img = torch.poisson(torch.full((4096, 4096), 10.0), generator=g)
    out["ctf_fit_4096_tile512_s"] = best_of(lambda: fit_ctf(img, pixel_size_angstrom=1.0), 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
