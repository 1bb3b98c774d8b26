"""EER movies: a tiny valid EER file (TIFF, compression 65001) written here, then read and grouped.

imagecodecs can decode EER but not encode it, so the test encodes the run-length bitstream itself
(7-bit skips + 4 sub-pixel bits, least significant bit first, Thermo Fisher's "EER_V1") and
checks the encoding round-trips through imagecodecs before writing it.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch

from cryozssr.errors import InputError
from cryozssr.io import open_movie, summarise_movie

SKIP_BITS, SUBPIXEL_BITS = 7, 4
PIXEL_M = 8.3e-11  # 0.83 Å


def _encode_eer_frame(frame: np.ndarray) -> bytes:
    """Encode a 0/1 event frame as an EER_V1 bitstream."""
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> k) & 1 for k in range(n))

    max_skip = (1 << SKIP_BITS) - 1

    def skip(run: int) -> int:
        while run >= max_skip:  # a saturated skip carries no event
            put(max_skip, SKIP_BITS)
            run -= max_skip
        return run

    position = 0
    for index in np.flatnonzero(frame.ravel()):
        put(skip(int(index) - position), SKIP_BITS)
        put(0, SUBPIXEL_BITS)
        position = int(index) + 1
    put(skip(frame.size - position), SKIP_BITS)  # run to the end of the frame
    bits += [0] * (-len(bits) % 16)  # the decoder reads 16-bit words
    encoded = np.packbits(np.array(bits, np.uint8), bitorder="little").tobytes()
    decoded = imagecodecs.eer_decode(encoded, frame.shape, SKIP_BITS, 2, 2)
    assert np.array_equal(decoded, frame.astype(bool)), "test encoder disagrees with imagecodecs"
    return encoded


def write_eer(path, frames: np.ndarray) -> None:
    xml = (
        "<metadata>"
        f'<item name="numberOfFrames">{len(frames)}</item>'
        f'<item name="sensorImageHeight">{frames.shape[1]}</item>'
        f'<item name="sensorImageWidth">{frames.shape[2]}</item>'
        f'<item name="sensorPixelSize.height" unit="m">{PIXEL_M}</item>'
        f'<item name="sensorPixelSize.width" unit="m">{PIXEL_M}</item>'
        "</metadata>"
    ).encode()
    compressors = tifffile.TIFF.COMPRESSORS._codecs
    compressors[65001] = lambda data, **kwargs: data  # segments below are already encoded
    try:
        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            for i, frame in enumerate(frames):
                tif.write(
                    iter([_encode_eer_frame(frame)]),
                    shape=frame.shape,
                    dtype=np.uint8,
                    compression=65001,
                    photometric="minisblack",
                    rowsperstrip=frame.shape[0],
                    extratags=[(65001, 7, len(xml), xml, True)] if i == 0 else None,
                )
    finally:
        del compressors[65001]


@pytest.fixture
def events():
    return (np.random.default_rng(3).random((10, 16, 24)) < 0.1).astype(np.uint8)


def test_eer_frames_are_grouped_into_fractions(tmp_path, events):
    path = tmp_path / "movie.eer"
    write_eer(path, events)
    with open_movie(path, eer_fractions=3) as movie:
        assert (movie.format, movie.n_frames, movie.shape) == ("EER", 3, (16, 24))
        assert movie.mode == "EER (10 frames in 3 groups of 3)"
        assert movie.pixel_size_angstrom == pytest.approx(0.83)
        # groups of 3 hardware frames; the 10th (the remainder) is dropped, as in RELION
        expected = events[:9].reshape(3, 3, 16, 24).sum(axis=1).astype(np.float32)
        assert torch.equal(movie.read(), torch.from_numpy(expected))
        # fractions of < 255 frames are read as uint8 counts (4x less memory than int32)
        counts = movie.read(keep_integers=True)
        assert counts.dtype == torch.uint8 and torch.equal(counts.float(), movie.read())
        summary = summarise_movie(movie)
    assert summary.mean_counts_per_pixel_per_frame == pytest.approx(expected.mean())
    assert summary.dose_per_frame_e_per_a2 == pytest.approx(expected.mean() / 0.83**2)


def test_eer_too_few_frames_for_the_fractions(tmp_path, events):
    write_eer(tmp_path / "movie.eer", events[:4])
    with pytest.raises(InputError, match="4 EER frames cannot be grouped into 40 fractions"):
        open_movie(tmp_path / "movie.eer")


def test_eer_extension_on_a_plain_tiff_is_rejected(tmp_path, events):
    tifffile.imwrite(tmp_path / "fake.eer", events, photometric="minisblack")
    with pytest.raises(InputError, match="not an EER file"):
        open_movie(tmp_path / "fake.eer")
