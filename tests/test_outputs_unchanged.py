"""Every method's output on a small synthetic movie equals the committed golden output.

A refactor must leave these bytes as they are. A change meant to move outputs (a faster solve, a
new default) regenerates the golden file on purpose and says so in its commit::

    PYTHONPATH=src python tests/test_outputs_unchanged.py --write

The golden outputs were written on the CPU with one torch thread (as the tests run). Equality is
exact (``TOLERANCE = 0``): it holds across runs on the machine that wrote them. If a change is
allowed to move outputs by a bounded amount, raise ``TOLERANCE`` (max absolute difference in
counts per HR pixel per frame) here, in the same commit, and say why.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from _synthetic import synthetic_movie
from cryozssr.cli.app import main as cli_main
from cryozssr.io import write_mrc

GOLDEN = Path(__file__).parent / "data" / "golden_outputs.npz"
TOLERANCE = 0.0
TINY = ["--preset", "fast", "--max-iterations", "3"]
RUNS: dict[str, list[str]] = {
    "bilinear": ["--method", "bilinear"],
    "bicubic": ["--method", "bicubic"],
    "fourier": ["--method", "fourier"],
    "shift-add": ["--method", "shift-add"],
    "misr": ["--method", "misr"],
    "mmse": ["--method", "mmse"],
    "zssr-journal": ["--method", "zssr", "--regime", "journal", *TINY],
    "zssr-workshop": ["--method", "zssr", "--regime", "workshop", *TINY],
    "misr-patches": ["--method", "misr", "--patches", "2"],
    "misr-tiles": ["--method", "misr", "-O", "tile_size_px=20", "-O", "tile_overlap_px=6"],
    "mmse-patches": ["--method", "mmse", "--patches", "2"],
}


def _movie(folder: Path) -> Path:
    lr, _, _ = synthetic_movie(size_hr=96, n_frames=8, seed=5)
    return write_mrc(folder / "golden.mrc", lr.numpy(), pixel_size_angstrom=2.0, mode="uint16")


def _run(movie: Path, out: Path, args: list[str]) -> np.ndarray:
    argv = sys.argv
    sys.argv = ["cryozssr", "run", str(movie), "--out", str(out), "--device", "cpu", *args]
    try:
        cli_main()
    except SystemExit as exc:
        assert not exc.code, f"cryozssr run {' '.join(args)} failed"
    finally:
        sys.argv = argv
    with mrcfile.open(out / "golden_sr.mrc") as mrc:
        return mrc.data.copy()


def outputs(folder: Path) -> dict[str, np.ndarray]:
    movie = _movie(folder)
    return {key: _run(movie, folder / key, args) for key, args in RUNS.items()}


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    return outputs(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("key", list(RUNS))
def test_output_equals_the_golden_output(current, key):
    golden = np.load(GOLDEN)
    assert key in golden.files, f"no golden output for {key}: regenerate (module docstring)"
    expected, got = golden[key], current[key]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if TOLERANCE == 0:
        diff = float(np.abs(got.astype(np.float64) - expected).max())
        assert np.array_equal(got, expected), f"{key}: max |difference| {diff:.3g}"
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


if __name__ == "__main__" and "--write" in sys.argv:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = outputs(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **result)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes): {', '.join(result)}")
