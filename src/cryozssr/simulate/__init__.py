"""Simulated cryo-EM movies with full ground truth: the project's measuring stick.

Physics (see :mod:`cryozssr.simulate.movie` for the per-frame order): Coulomb potential from a real
atomic model (Peng 1996 scattering factors, B-factors, displaced ice) sampled finer than the HR
pixel; particles at uniformly random orientations and non-overlapping random positions; a
vitreous-ice slab (molecular texture with its 3.7 A ring, thickness variation); beam-induced
motion (global drift, fast then slowing, plus smooth local motion, with the blur of the motion
within each frame); Grant & Grigorieff radiation damage; weak-phase image through the CTF; a
measured detector MTF with the pixel aperture, the image formed on a 2x finer grid so that the HR
pixel aliases what lies above its Nyquist frequency; Poisson counts. The LR movie is the 2x2 box sum
of the HR counts. Not modelled: partial-coherence envelopes, per-particle defocus (particle
heights in the ice), the Ewald sphere, inelastic scattering beyond the amplitude contrast.

Python::

    from cryozssr.simulate import SimulationConfig, build_potential, simulate_movie
    config = SimulationConfig(size_hr=256, frames=8, particles=6)
    potential = build_potential(None, "O", config.pixel_size_hr_angstrom)  # memoised
    movie = simulate_movie(config, seed=0, potential=potential)

Files written by ``cryozssr simulate --out SIM_DIR`` (stems ``mic_0000``, ``mic_0001``, ...)::

    SIM_DIR/simulation.json           every parameter, the seed, the cryozssr version, the command,
                                      per-movie CTF and motion summaries
    SIM_DIR/map.mrc                   ground-truth potential (V, relative to the ice it displaces) at
                                      the HR pixel; particle centred on voxel N//2 (Fourier-cropped)
    SIM_DIR/particles.star            RELION 3.1: data_optics + data_particles; rlnMicrographName =
                                      LR movie relative to SIM_DIR; rlnCoordinateX/Y in HR px (frame
                                      0, pixel centres at integers, 0-based); rlnAngleRot/Tilt/Psi;
                                      rlnDefocusU/V (A), rlnDefocusAngle (deg); rlnOpticsGroup
    SIM_DIR/movies_lr/<stem>.mrc      LR movie, counts, MRC mode 6 (uint16), voxel = 2 x HR pixel
    SIM_DIR/movies_hr/<stem>.mrc      HR movie, counts, MRC mode 6, voxel = HR pixel
    SIM_DIR/truth/<stem>_ctf.mrc      noiseless HR micrograph (counts per HR pixel per frame), CTF,
                                      detector MTF, undamaged, specimen at frame 0 (float32)
    SIM_DIR/truth/<stem>_noctf.mrc    the same with CTF = 1: dose x area x (1 - 2 phase)
    SIM_DIR/truth/<stem>_motion.json  global trajectory per frame as [x, y] in HR px, LR px and A,
                                      and the local field on its node grid (HR px)

The field of view is periodic (particles, ice and motion wrap around the edges). Conventions for
shifts follow :mod:`cryozssr.motion.field`: ``shift[t]`` is the specimen's position in frame ``t``
relative to frame 0.
"""

from cryozssr.simulate.config import DETECTORS, SimulationConfig
from cryozssr.simulate.movie import MovieCTF, SimulatedMovie, simulate_movie
from cryozssr.simulate.orientation import euler_to_matrix, matrix_to_euler
from cryozssr.simulate.potential import (
    Potential,
    build_potential,
    default_model_path,
    potential_from_atoms,
)

__all__ = [
    "DETECTORS",
    "MovieCTF",
    "Potential",
    "SimulatedMovie",
    "SimulationConfig",
    "build_potential",
    "default_model_path",
    "euler_to_matrix",
    "matrix_to_euler",
    "potential_from_atoms",
    "simulate_movie",
]
