"""Read the next movie's file in the background, so that disk (or network storage) and compute overlap.

A batch processes one movie while the file of the next is read once, in a daemon thread, and its
bytes dropped: the operating system's page cache then holds it when the movie is opened, so its
read costs the decode, not the transfer. Nothing is kept in the process (no resident memory
beyond one block); a file that cannot be read is left to the real read, which reports it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

BLOCK_BYTES = 8 * 2**20
"""Bytes read at a time."""


class Prefetch:
    """One file read in a background thread; :meth:`wait` for it (tests, benchmarks)."""

    def __init__(self, path: Path, *, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = Path(path)
        self.bytes_read = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._block = block_bytes
        self._thread = threading.Thread(target=self._run, name="cryozssr-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                if hasattr(os, "posix_fadvise"):  # ask the kernel to read ahead as well
                    os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
                buffer = bytearray(self._block)
                while not self._stop.is_set():
                    n = fh.readinto(buffer)
                    if not n:
                        break
                    self.bytes_read += n
        except OSError as exc:  # the movie's own read will say what is wrong with it
            self.error = str(exc)
            logger.debug("prefetch of %s stopped: %s", self.path, exc)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the read to end; ``True`` if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Stop after the current block (the batch is stopping)."""
        self._stop.set()


def prefetch_file(path: str | os.PathLike) -> Prefetch:
    """Start reading ``path`` in the background (module docstring)."""
    return Prefetch(Path(path))
