"""Motion of the specimen across a movie's frames, and the frame averages built from it."""

from cryozssr.motion.field import MotionField

__all__ = ["MotionField"]
