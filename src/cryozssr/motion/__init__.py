"""Motion of the specimen across a movie's frames, and the frame averages built from it."""

from cryozssr.motion.averages import (
    align_frames,
    choose_references,
    dose_weighted_average,
    even_odd_frames,
    journal_split,
    reference_aligned_averages,
)
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField

__all__ = [
    "MotionConfig",
    "MotionField",
    "align_frames",
    "choose_references",
    "dose_weighted_average",
    "estimate_motion",
    "even_odd_frames",
    "journal_split",
    "reference_aligned_averages",
]
