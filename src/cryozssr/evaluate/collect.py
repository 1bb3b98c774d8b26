"""Reading what ``cryozssr evaluate`` compares: run folders and a simulation folder.

The only file-reading module of :mod:`cryozssr.evaluate`. Bad input raises
:class:`~cryozssr.errors.InputError` with one line naming the file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import starfile
import torch

from cryozssr.dose import Exposure
from cryozssr.errors import InputError
from cryozssr.io import movie_stem, open_movie, read_image

log = logging.getLogger(__name__)

PARTICLE_COLUMNS = (
    "rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAngleRot", "rlnAngleTilt",
    "rlnAnglePsi", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle",
)  # fmt: skip


@dataclass
class RunDir:
    """One ``cryozssr run`` output folder: one method, one record per movie stem."""

    path: Path
    method: str
    records: dict[str, dict[str, Any]]
    left_out: dict[str, str] = field(default_factory=dict)  # stem -> why (not done per manifest)

    @property
    def stems(self) -> list[str]:
        return sorted(self.records)

    def file(self, stem: str, key: str) -> Path | None:
        """Path of output ``key`` (``sr``, ``avg``, ``sr_even``, ``sr_odd``) or ``None`` if absent."""
        name = self.records[stem].get("outputs", {}).get(key)
        if name is None:
            suffix = {"sr": "_sr", "avg": "_avg", "sr_even": "_sr_even", "sr_odd": "_sr_odd"}[key]
            name = f"{stem}{suffix}.mrc"
        p = self.path / name
        return p if p.is_file() else None

    def exposure(self, stem: str) -> Exposure:
        e = dict(self.records[stem].get("exposure") or {})
        e.setdefault("pixel_size_angstrom", self.records[stem]["input_pixel_size_angstrom"])
        known = Exposure.__dataclass_fields__
        return Exposure(**{k: v for k, v in e.items() if k in known})


def method_label(record: dict[str, Any]) -> str:
    """``zssr/journal`` style label of a run record (method, and the zssr regime when there is one)."""
    method = str(record["method"])
    regime = (record.get("method_config") or {}).get("regime")
    return f"{method}/{regime}" if regime else method


def done_movies(path: Path) -> tuple[set[str], dict[str, str]] | None:
    """``(stems done, {stem: why not})`` from the folder's batch manifest; ``None`` without one.

    Done: the manifest's last entry says so, under the folder's current configuration, and its
    files are as written (size and time): a failed, pending or killed movie is not done, even if
    a ``<stem>.json`` of it exists.
    """
    from cryozssr.errors import OutputError
    from cryozssr.pipeline.manifest import manifest_path, read_manifest, verify_done

    if not manifest_path(path).is_file():
        return None
    try:
        state = read_manifest(path)
    except OutputError as exc:
        raise InputError(str(exc)) from None
    done, why = set(), {}
    for stem, entry in state["movies"].items():
        if entry.get("state") != "done":
            reason = entry.get("reason")
            why[stem] = f"{entry.get('state', 'unknown')}" + (f": {reason}" if reason else "")
        elif state.get("fingerprint") and entry.get("fingerprint") != state["fingerprint"]:
            why[stem] = "done under another configuration"
        elif problem := verify_done(path, entry):
            why[stem] = problem
        else:
            done.add(stem)
    return done, why


def read_run_dir(path: str | Path) -> RunDir:
    """Read the records of a run folder's finished movies; each must have its SR and average.

    With a batch manifest (every ``cryozssr run`` writes one) only the movies it says are done
    count; the others are listed in ``left_out``. A folder without one (written by hand or by an
    older version) is taken as it is.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (expected the output folder of `cryozssr run`)")
    records: dict[str, dict[str, Any]] = {}
    for js in sorted(path.glob("*.json")):
        try:
            rec = json.loads(js.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{js}: unreadable run record ({exc})") from None
        if isinstance(rec, dict) and "method" in rec and "input_pixel_size_angstrom" in rec:
            records[rec.get("stem", js.stem)] = rec
    if not records:
        raise InputError(f"{path}: no run records (<stem>.json from `cryozssr run`) in this folder")
    manifest = done_movies(path)
    left_out: dict[str, str] = {}
    if manifest is None:
        log.debug("%s: no batch manifest: every <stem>.json is taken as a finished movie", path)
    else:
        done, why = manifest
        for stem in sorted(set(records) - done):
            left_out[stem] = why.get(stem, "not in the manifest (interrupted?)")
            del records[stem]
        if not records:
            raise InputError(f"{path}: no movie is done according to its manifest")
    methods = {method_label(r) for r in records.values()}
    if len(methods) != 1:
        raise InputError(f"{path}: mixes methods {sorted(methods)}; give one folder per method")
    run = RunDir(path, methods.pop(), records, left_out)
    for stem in run.stems:
        for key in ("sr", "avg"):
            if run.file(stem, key) is None:
                raise InputError(f"{path}: {stem}_{key}.mrc is missing (incomplete run?)")
    return run


def load_image(path: Path) -> tuple[torch.Tensor, float | None]:
    """A 2D micrograph as float32 ``(h, w)`` and its header pixel size."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return read_image(path)


def image_shape(path: Path) -> tuple[int, int]:
    """``(h, w)`` of a 2D MRC image or the frames of an MRC movie, from its header only."""
    import mrcfile

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with mrcfile.open(path, header_only=True, permissive=True) as mrc:
            return int(mrc.header.ny), int(mrc.header.nx)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable MRC header ({exc})") from None


@dataclass
class SimDir:
    """A simulated dataset (``cryozssr simulate``): truth images, map, particles, metadata."""

    path: Path
    info: dict[str, Any]
    particles: pd.DataFrame
    map: torch.Tensor = field(repr=False)
    map_pixel_size_angstrom: float = 0.0

    def truth_path(self, stem: str, kind: str = "ctf") -> Path:
        return self.path / "truth" / f"{stem}_{kind}.mrc"

    def hr_movie_path(self, stem: str) -> Path:
        return self.path / "movies_hr" / f"{stem}.mrc"

    @property
    def symmetry(self) -> str:
        """Point group of the simulated particle (``simulation.json``: ``config.symmetry``)."""
        cfg = self.info.get("config") or {}
        return str(self.info.get("symmetry") or cfg.get("symmetry") or "C1")

    def particles_of(self, stem: str) -> pd.DataFrame:
        names = self.particles["rlnMicrographName"].map(lambda s: movie_stem(str(s)))
        return self.particles[names == stem]

    def read_hr_movie(self, stem: str) -> torch.Tensor:
        p = self.hr_movie_path(stem)
        if not p.is_file():
            raise InputError(f"{p}: HR movie missing from the simulation folder")
        with open_movie(p) as movie:
            return movie.read()


def read_sim_dir(path: str | Path) -> SimDir:
    """Read ``simulation.json``, ``particles.star`` and ``map.mrc`` of a simulation folder."""
    path = Path(path)
    for name in ("simulation.json", "particles.star", "map.mrc"):
        if not (path / name).is_file():
            raise InputError(f"{path}: {name} missing (is this a `cryozssr simulate` folder?)")
    try:
        info = json.loads((path / "simulation.json").read_text())
    except ValueError as exc:
        raise InputError(f"{path / 'simulation.json'}: not valid JSON ({exc})") from None
    try:
        star = starfile.read(path / "particles.star", always_dict=True)
    except Exception as exc:  # starfile raises many kinds on malformed files
        raise InputError(f"{path / 'particles.star'}: unreadable STAR file ({exc})") from None
    df = star.get("particles", next(iter(star.values())))
    missing = [c for c in PARTICLE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path / 'particles.star'}: columns missing: {', '.join(missing)}")
    import mrcfile  # the map is a volume; cryozssr.io reads 2D images and movies

    try:
        with mrcfile.open(path / "map.mrc", permissive=True) as mrc:
            vol = torch.from_numpy(mrc.data.astype("float32").copy())
            px = float(mrc.voxel_size.x)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path / 'map.mrc'}: unreadable MRC ({exc})") from None
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise InputError(f"{path / 'map.mrc'}: expected a cubic 3D map, got {tuple(vol.shape)}")
    return SimDir(path, info, df, vol, px)
