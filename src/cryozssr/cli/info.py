"""``cryozssr info``: describe movies (frames, size, storage, pixel size, counts and dose)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cryozssr.cli._common import console
from cryozssr.io import expand_movie_inputs, open_movie, summarise_movie


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def info(
    movies: list[str] = typer.Argument(
        ..., help="Movie files (MRC/MRCS, TIFF, EER), globs, folders or a RELION movies STAR file."
    ),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", min=0.0, help="Pixel size in Å (overrides the file header)."
    ),
    eer_fractions: int = typer.Option(
        40, "--eer-fractions", min=1, help="EER only: group the hardware frames into N frames."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Describe movies: frames, size, storage mode, pixel size, mean counts and dose per frame.

    The dose per frame (e/Å²) is the mean counts per pixel per frame divided by the pixel size
    squared; it is shown when the pixel size is known (header or --pixel-size). Movies are
    streamed one frame at a time.

    Example: cryozssr info movies/*.tiff --pixel-size 0.83
    """
    paths = expand_movie_inputs(movies)
    summaries = []
    for path in paths:
        with open_movie(path, pixel_size_angstrom=pixel_size, eer_fractions=eer_fractions) as movie:
            summaries.append(summarise_movie(movie))
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in summaries], indent=2))
        return
    table = Table(title="cryozssr info")
    for column in ("file", "format / mode", "frames", "h x w", "pixel (Å)", "counts/px/frame"):
        table.add_column(column, justify="left" if column in ("file", "format / mode") else "right")
    table.add_column("dose/frame (e/Å²)", justify="right")
    for s in summaries:
        table.add_row(
            s.path,
            s.mode,
            str(s.n_frames),
            f"{s.height} x {s.width}",
            _fmt(s.pixel_size_angstrom, 4),
            _fmt(s.mean_counts_per_pixel_per_frame, 4),
            _fmt(s.dose_per_frame_e_per_a2, 4),
        )
    console.print(table)
