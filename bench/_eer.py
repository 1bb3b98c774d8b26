"""A vectorised EER_V1 encoder for synthetic Falcon-size benchmark movies.

imagecodecs decodes EER but does not encode it. The bitstream (Thermo Fisher's EER_V1, as
imagecodecs' ``eer_decode(data, shape, 7, 2, 2)`` reads it): for every event, the run of empty
pixels before it as 7-bit codes (a code of 127 continues the run without an event), then 4
sub-pixel bits; least significant bit first, padded to 16-bit words. The tests' scalar encoder
(``tests/test_io_eer.py``) is the readable one; this one is checked against imagecodecs on the
first frame it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

SKIP_BITS, SUBPIXEL_BITS = 7, 4
MAX_SKIP = (1 << SKIP_BITS) - 1


def encode_frame(frame: np.ndarray) -> bytes:
    """A 0/1 event frame ``(h, w)`` as an EER_V1 bitstream."""
    events = np.flatnonzero(frame.ravel())
    previous = np.concatenate([[-1], events[:-1]])
    tail = frame.size - (int(events[-1]) + 1 if events.size else 0)
    runs = np.concatenate([events - previous - 1, [tail]])
    saturated, rest = np.divmod(runs, MAX_SKIP)
    subpixel = np.full(runs.size, SUBPIXEL_BITS)
    subpixel[-1] = 0  # the run to the end of the frame carries no event
    lengths = SKIP_BITS * (saturated + 1) + subpixel
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    bits = np.zeros(total + (-total % 16), np.uint8)
    n_ones = SKIP_BITS * saturated
    first = np.cumsum(n_ones) - n_ones
    ones = np.repeat(starts - first, n_ones) + np.arange(int(n_ones.sum()))
    bits[ones] = 1  # saturated codes: 7 one bits each
    at = starts + n_ones
    for k in range(SKIP_BITS):
        bits[at + k] = (rest >> k) & 1
    return np.packbits(bits, bitorder="little").tobytes()


def write_eer(
    path: Path, frames: Iterable[np.ndarray], *, n_frames: int, shape: tuple[int, int],
    pixel_size_m: float,
) -> None:  # fmt: skip
    """Write 0/1 event frames as an EER file (TIFF, compression 65001, the metadata tag)."""
    import imagecodecs
    import tifffile

    xml = (
        "<metadata>"
        f'<item name="numberOfFrames">{n_frames}</item>'
        f'<item name="sensorImageHeight">{shape[0]}</item>'
        f'<item name="sensorImageWidth">{shape[1]}</item>'
        f'<item name="sensorPixelSize.height" unit="m">{pixel_size_m}</item>'
        f'<item name="sensorPixelSize.width" unit="m">{pixel_size_m}</item>'
        "</metadata>"
    ).encode()
    compressors = tifffile.TIFF.COMPRESSORS._codecs
    compressors[65001] = lambda data, **kwargs: data  # the segments are encoded already
    try:
        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            for i, frame in enumerate(frames):
                encoded = encode_frame(frame)
                if i == 0:
                    decoded = imagecodecs.eer_decode(encoded, frame.shape, SKIP_BITS, 2, 2)
                    if not np.array_equal(decoded, frame.astype(bool)):
                        raise RuntimeError("the EER encoder disagrees with imagecodecs")
                tif.write(
                    iter([encoded]),
                    shape=frame.shape,
                    dtype=np.uint8,
                    compression=65001,
                    photometric="minisblack",
                    rowsperstrip=frame.shape[0],
                    extratags=[(65001, 7, len(xml), xml, True)] if i == 0 else None,
                )
    finally:
        del compressors[65001]
