"""Reading and writing cryo-EM files: MRC/MRCS, TIFF and EER movies, gain references, STAR files.

This is the only layer of cryozssr that touches files; everything it returns is a torch tensor or a
plain value. User-caused problems raise :class:`~cryozssr.errors.InputError` or
:class:`~cryozssr.errors.OutputError` with one clear message naming the file.

Orientation: MRC and EER frames are read as stored; TIFF images are flipped along the slow axis
(rows), as RELION, MotionCor2 and IMOD do, so gain rotations/flips mean the same as in RELION.
"""

from cryozssr.io.binning import BinResult, bin_movie, fourier_crop
from cryozssr.io.gain import orient_gain, read_gain
from cryozssr.io.inputs import MOVIE_EXTENSIONS, expand_movie_inputs, movie_stem
from cryozssr.io.movie import Movie, open_movie, read_image, require_pixel_size
from cryozssr.io.summary import MovieSummary, summarise_movie
from cryozssr.io.write import (
    MRC_MODES,
    atomic_path,
    open_mrc_writer,
    write_micrographs_star,
    write_mrc,
    write_star,
)

__all__ = [
    "MOVIE_EXTENSIONS",
    "MRC_MODES",
    "BinResult",
    "Movie",
    "MovieSummary",
    "atomic_path",
    "bin_movie",
    "expand_movie_inputs",
    "fourier_crop",
    "movie_stem",
    "open_movie",
    "open_mrc_writer",
    "orient_gain",
    "read_gain",
    "read_image",
    "require_pixel_size",
    "summarise_movie",
    "write_micrographs_star",
    "write_mrc",
    "write_star",
]
