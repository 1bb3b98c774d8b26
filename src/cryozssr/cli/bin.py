"""``cryozssr bin``: make low-magnification movies from high-magnification ones."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from cryozssr.errors import OptionError
from cryozssr.io import bin_movie, expand_movie_inputs, open_movie, read_gain

logger = logging.getLogger("cryozssr.cli.bin")


def bin_movies(
    movies: list[str] = typer.Argument(
        ..., help="Movie files (MRC/MRCS, TIFF, EER), globs, folders or a RELION movies STAR file."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: writes OUT/<stem>.mrc."),
    factor: int = typer.Option(2, "--factor", help="Binning factor (integer >= 2)."),
    mode: str = typer.Option(
        "box", "--mode", help="box: sum counts in factor x factor blocks; fourier: Fourier crop."
    ),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", min=0.0, help="Input pixel size in Å (overrides the file header)."
    ),
    gain: Path | None = typer.Option(
        None, "--gain", help="Gain reference (MRC/TIFF) to multiply frames by before binning."
    ),
    gain_rot: int = typer.Option(
        0, "--gain-rot", help="Rotate the gain by N x 90° clockwise (RELION --gain_rot, 0..3)."
    ),
    gain_flip: int = typer.Option(
        0, "--gain-flip", help="Then flip the gain: 1 upside down, 2 left-right (RELION, 0..2)."
    ),
    eer_fractions: int = typer.Option(
        40, "--eer-fractions", min=1, help="EER only: group the hardware frames into N frames."
    ),
) -> None:
    """Bin movies by an integer factor, as the Cryo-ZSSR papers did with IMOD.

    Box binning sums the counts of factor x factor pixels (integer counts stay integer); the
    output pixel size in the MRC header is the input pixel size times the factor. --mode fourier
    crops the spectrum instead (float32, same mean as box binning). Frame sizes that are not a
    multiple of the factor lose their last rows/columns (with a warning). With --gain the frames
    are multiplied by the gain reference first (float32 output). Frames are processed one at a
    time; inputs are never overwritten.

    Example: cryozssr bin movies/*.tiff --factor 2 --out binned --pixel-size 0.415
    """
    if factor < 2:
        raise OptionError(f"--factor must be an integer >= 2, got {factor}")
    if mode not in ("box", "fourier"):
        raise OptionError(f"--mode must be 'box' or 'fourier', got {mode!r}")
    paths = expand_movie_inputs(movies)
    gain_ref = None if gain is None else read_gain(gain, rot=gain_rot, flip=gain_flip)
    for number, path in enumerate(paths, start=1):
        with open_movie(path, pixel_size_angstrom=pixel_size, eer_fractions=eer_fractions) as movie:
            result = bin_movie(
                movie,
                out / f"{path.stem}.mrc",
                factor=factor,
                method=mode,
                gain=gain_ref,
                overwrite_protect=[*paths, *([gain] if gain else [])],
            )
        logger.info(
            "[%d/%d] %s -> %s: %d x %d x %d, %s, %.4f Å/px",
            number,
            len(paths),
            path,
            result.path,
            result.n_frames,
            *result.shape,
            result.mode,
            result.pixel_size_angstrom,
        )
