"""Describe a movie by streaming it once: size, storage, pixel size, mean counts and dose per frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cryozssr.io.movie import Movie

__all__ = ["MovieSummary", "summarise_movie"]


@dataclass(frozen=True)
class MovieSummary:
    """What ``cryozssr info`` reports for one movie."""

    path: str
    format: str
    mode: str
    dtype: str
    n_frames: int
    height: int
    width: int
    pixel_size_angstrom: float | None
    mean_counts_per_pixel_per_frame: float
    dose_per_frame_e_per_a2: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def summarise_movie(movie: Movie) -> MovieSummary:
    """Stream every frame of ``movie`` once (one frame in memory) and summarise it.

    The dose per frame is ``mean counts per pixel per frame / pixel_size_angstrom**2`` (e/Å²),
    valid for counting-mode (or gain-normalised) data; ``None`` when the pixel size is unknown.
    """
    total = 0.0
    for frame in movie:
        total += float(frame.double().mean())
    mean = total / movie.n_frames
    pixel = movie.pixel_size_angstrom
    return MovieSummary(
        path=str(movie.path),
        format=movie.format,
        mode=movie.mode,
        dtype=movie.dtype_name,
        n_frames=movie.n_frames,
        height=movie.shape[0],
        width=movie.shape[1],
        pixel_size_angstrom=pixel,
        mean_counts_per_pixel_per_frame=mean,
        dose_per_frame_e_per_a2=None if pixel is None else mean / pixel**2,
    )
