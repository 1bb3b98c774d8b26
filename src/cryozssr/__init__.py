"""cryozssr: self-supervised 2x super-resolution of cryo-EM movies.

The package is laid out as the pipeline runs:

``io`` (movies, gain, micrographs, STAR) -> ``motion`` (trajectories, reference-aligned averages)
-> ``baselines`` / ``zssr`` (super-resolution) -> ``pipeline`` (one movie, many movies)
and beside it ``simulate`` (ground truth) and ``evaluate`` (FRC, CTF fit, 3D reconstruction).
``ops`` and ``dose`` hold the small tensor primitives everything shares.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryozssr")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
