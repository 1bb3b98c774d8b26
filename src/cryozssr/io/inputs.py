"""Turn command-line INPUT arguments (files, globs, folders, RELION movie STAR files) into paths."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import starfile

from cryozssr.errors import InputError
from cryozssr.io._backends import EER_EXTENSIONS, MRC_EXTENSIONS

__all__ = ["MOVIE_EXTENSIONS", "expand_movie_inputs", "movie_stem"]

#: Extensions taken as movies when a folder is given (``.gain`` is a gain reference, not a movie).
MOVIE_EXTENSIONS = (*MRC_EXTENSIONS, ".tif", ".tiff", *EER_EXTENSIONS)


def movie_stem(path: str | Path) -> str:
    """A movie's file name without its movie extension (``a.mrcs`` -> ``a``): the stem of its
    outputs and of the micrograph names that STAR files and run records share."""
    name = Path(path).name
    for ext in MOVIE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def _from_star(path: Path) -> list[Path]:
    try:
        data = starfile.read(path, always_dict=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable STAR file ({exc})") from None
    for block in data.values():
        if hasattr(block, "columns") and "rlnMicrographMovieName" in block.columns:
            return [_star_entry(path, str(name)) for name in block["rlnMicrographMovieName"]]
    raise InputError(f"{path}: no rlnMicrographMovieName column (is it a RELION movies STAR?)")


def _star_entry(star: Path, name: str) -> Path:
    """RELION writes names relative to the project folder (where it runs): take that when it
    exists, else relative to the STAR file's folder."""
    as_given = Path(name)
    if as_given.is_absolute() or as_given.exists():
        return as_given
    beside = star.parent / name
    return beside if beside.exists() else as_given


def _from_folder(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MOVIE_EXTENSIONS)


def expand_movie_inputs(inputs: Sequence[str]) -> list[Path]:
    """Expand files, globs, folders and RELION movie STAR files into a list of movie paths.

    * a folder contributes its files with a movie extension (``.mrc .mrcs .tif .tiff .eer``...);
    * a glob (``"movies/*.tiff"``) contributes its sorted matches;
    * a ``.star`` file contributes its ``rlnMicrographMovieName`` entries, relative to the current
      folder (RELION's project folder) or, failing that, to the STAR file's folder;
    * anything else is taken as a file (checked later, when opened).

    Order is kept and exact repeats dropped. Nothing found, or two movies with the same stem
    (their outputs would collide), raise :class:`~cryozssr.errors.InputError`.
    """
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = _from_folder(path)
            if not found:
                raise InputError(f"{path}: folder holds no movies ({' '.join(MOVIE_EXTENSIONS)})")
        elif path.suffix.lower() == ".star":
            if not path.is_file():
                raise InputError(f"{path}: no such file")
            found = _from_star(path)
        elif glob.has_magic(item) and not path.exists():
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
            if not found:
                raise InputError(f"{item}: pattern matches no files")
        else:
            found = [path]
        paths.extend(found)
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise InputError("no input movies given")
    stems: dict[str, Path] = {}
    for p in unique:
        if p.stem in stems:
            raise InputError(
                f"two inputs share the name {p.stem!r} ({stems[p.stem]} and {p}): "
                "their outputs would overwrite each other"
            )
        stems[p.stem] = p
    return unique
