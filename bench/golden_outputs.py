"""sha256 of every output image of every method on a small simulated movie (a refactor's check).

Simulates one small movie with ``cryozssr simulate`` (fixed seed), runs ``cryozssr run`` on it once
per method (the interpolations, shift-add, misr, mmse, zssr journal and workshop with a tiny
training budget, misr and mmse with local motion), and records the sha256 of each output array
(the simulated movies and truth images, every ``*_sr.mrc`` / ``*_avg.mrc``). A refactor that
changes no output leaves every hash as it was::

    PYTHONPATH=src python bench/golden_outputs.py --out /tmp/golden_before.json   # before
    PYTHONPATH=src python bench/golden_outputs.py --compare /tmp/golden_before.json  # after

Keys name what ran (``mmse`` is the closed-form regime that was ``zssr --regime explicit``), so
the same key compares across the rename. Every run is its own process (``cryozssr`` on the PATH
of this interpreter's environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import mrcfile

CLI = [sys.executable, "-c", "from cryozssr.cli.app import main; main()"]
SIMULATE = ["--size-hr", "256", "--frames", "12", "--particles", "6", "--seed", "3"]
TINY = ["--preset", "fast", "--max-iterations", "4"]
RUNS: dict[str, list[str]] = {
    **{m: ["--method", m] for m in ("bilinear", "bicubic", "fourier", "shift-add", "misr", "mmse")},
    "mmse-half-sets": ["--method", "mmse", "--half-sets"],
    **{f"zssr-{r}": ["--method", "zssr", "--regime", r, *TINY] for r in ("journal", "workshop")},
    **{f"{m}-patches": ["--method", m, "--patches", "2"] for m in ("misr", "mmse")},
}


def array_sha256(path: Path) -> str:
    with mrcfile.open(path, permissive=True) as mrc:
        data = mrc.data
        return hashlib.sha256(
            data.dtype.str.encode() + str(data.shape).encode() + data.tobytes()
        ).hexdigest()


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): array_sha256(p) for p in sorted(folder.rglob("*.mrc"))}


def golden(work: Path, *, only: list[str] | None = None) -> dict[str, dict[str, str]]:
    subprocess.run([*CLI, "simulate", "--out", str(work / "sim"), *SIMULATE], check=True)
    out = {"simulate": hashes(work / "sim")}
    movie = work / "sim" / "movies_lr" / "mic_0000.mrc"
    for key, args in RUNS.items():
        if only and key not in only:
            continue
        folder = work / key
        subprocess.run([*CLI, "run", str(movie), "--out", str(folder), *args], check=True)
        out[key] = hashes(folder)
        record = json.loads((folder / "mic_0000.json").read_text())
        out[key]["json:method"] = record["method"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the hashes here")
    parser.add_argument("--compare", type=Path, help="compare with hashes written before")
    parser.add_argument("--only", nargs="*", help="run only these keys")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = golden(Path(tmp), only=args.only)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    if args.compare:
        before = json.loads(args.compare.read_text())
        bad = []
        for key, files in result.items():
            for name, digest in files.items():
                if name.startswith("json:"):
                    continue
                old = before.get(key, {}).get(name)
                status = "same" if old == digest else ("NEW" if old is None else "CHANGED")
                if status != "same":
                    bad.append(f"{key}/{name}")
                print(f"{status:8s} {key}/{name}")
        print("all identical" if not bad else f"{len(bad)} differ: {', '.join(bad)}")
        sys.exit(1 if bad else 0)
    if not args.out:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
