"""Run a super-resolution method over movies: the only library layer that touches files."""

from cryozssr.pipeline.config import METHODS, RunConfig
from cryozssr.pipeline.movie import MovieResult, process_movie

__all__ = ["METHODS", "MovieResult", "RunConfig", "process_movie"]
