"""The simulator recovers what it injects: dose, binning, CTF, orientation, motion, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch_ctf import calculate_ctf_1d

from cryozssr.errors import InputError, OptionError
from cryozssr.geometry import symmetry_matrices
from cryozssr.ops import box_sum
from cryozssr.register import estimate_shift
from cryozssr.simulate import (
    SimulationConfig,
    build_potential,
    euler_to_matrix,
    matrix_to_euler,
    simulate_movie,
)
from cryozssr.simulate.atoms import apply_symmetry, read_atoms
from cryozssr.simulate.counting import COUNTING
from cryozssr.simulate.detector import detector_mtf_1d, read_mtf_table
from cryozssr.simulate.orientation import random_rotations
from cryozssr.simulate.potential import default_model_path, potential_from_atoms

PX = 4.0  # coarse HR pixel: tiny, fast tests
BASE = SimulationConfig(size_hr=128, pixel_size_hr_angstrom=PX, frames=6, particles=4)


@pytest.fixture(scope="module")
def potential():
    return build_potential(None, "O", PX)


@pytest.fixture(scope="module")
def movie(potential):
    return simulate_movie(BASE, seed=7, potential=potential)


def test_mean_counts_equal_dose_times_pixel_area_times_counts_per_electron(potential, movie):
    electrons = BASE.dose_per_frame_e_per_a2 * PX**2
    ideal = simulate_movie(
        dataclasses.replace(BASE, noise_model="poisson"), seed=7, potential=potential
    )
    per_electron = COUNTING[BASE.detector].recorded_fraction  # the default: the K3's statistics
    assert per_electron < 0.95  # efficiency and coincidence loss are there to be seen
    for sim, expected in ((ideal, electrons), (movie, electrons * per_electron)):
        per_frame = sim.hr_counts.double().mean(dim=(-2, -1))
        assert torch.allclose(per_frame, torch.full_like(per_frame, expected), rtol=0.02)
        assert sim.truth_ctf.double().mean().item() == pytest.approx(expected, rel=1e-3)


def test_lr_movie_is_the_exact_2x2_sum_of_hr_counts(movie):
    assert not movie.hr_counts.is_floating_point()
    assert movie.lr_counts.shape == (BASE.frames, 64, 64)
    assert torch.equal(movie.lr_counts, box_sum(movie.hr_counts))


def test_same_seed_same_movie_other_seed_differs(potential, movie):
    again = simulate_movie(BASE, seed=7, potential=potential)
    other = simulate_movie(BASE, seed=8, potential=potential)
    assert torch.equal(again.hr_counts, movie.hr_counts)
    assert torch.equal(again.truth_ctf, movie.truth_ctf)
    assert not torch.equal(other.hr_counts, movie.hr_counts)
    assert not np.allclose(other.particles_yx_px, movie.particles_yx_px)


def _radial_power(frames: torch.Tensor) -> np.ndarray:
    """Mean over frames of the radially averaged power spectrum, bins k = i / n (cycles/px)."""
    n = frames.shape[-1]
    f = frames.double() - frames.double().mean(dim=(-2, -1), keepdim=True)
    ps = (torch.fft.rfft2(f).abs() ** 2).mean(0)
    k = torch.sqrt(torch.fft.fftfreq(n)[:, None] ** 2 + torch.fft.rfftfreq(n)[None, :] ** 2)
    r = torch.round(k * n).long().clamp(max=n // 2).flatten()
    total = torch.zeros(n // 2 + 1, dtype=torch.float64).index_add_(0, r, ps.flatten())
    count = torch.zeros(n // 2 + 1, dtype=torch.float64).index_add_(
        0, r, torch.ones_like(ps).flatten()
    )
    return (total / count).numpy()


def _ctf_1d(defocus_um: float, n: int) -> np.ndarray:
    return calculate_ctf_1d(
        defocus=defocus_um, voltage=300.0, spherical_aberration=2.7, amplitude_contrast=0.07,
        phase_shift=0.0, pixel_size=PX, n_samples=n // 2 + 1, oversampling_factor=1,
    ).numpy()  # fmt: skip


def _detrend(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return y - np.polyval(np.polyfit(x, y, 3), x)


@pytest.fixture(scope="module")
def stigmatic_movie(potential):
    cfg = dataclasses.replace(
        BASE, particles=5, astigmatism_max_angstrom=0.0, dose_per_frame_e_per_a2=4.0
    )
    return simulate_movie(cfg, seed=3, potential=potential)


def test_thon_rings_sit_where_the_injected_ctf_has_zeros(stigmatic_movie):
    m = stigmatic_movie
    n = m.hr_counts.shape[-1]
    power = _radial_power(m.truth_ctf[None])  # the noiseless micrograph
    ctf = _ctf_1d(m.ctf.defocus_mean_um, n)
    k = np.arange(n // 2 + 1) / n / PX
    band = (k > 1 / 40) & (k < 1 / 8.5)
    zeros = band & (np.abs(ctf) < 0.25)
    peaks = band & (np.abs(ctf) > 0.9)
    assert zeros.sum() >= 3 and peaks.sum() >= 3
    resid = _detrend(np.log(power[band]), k[band])
    at = dict(zip(np.flatnonzero(band), resid, strict=True))
    low = np.mean([at[i] for i in np.flatnonzero(zeros)])
    high = np.mean([at[i] for i in np.flatnonzero(peaks)])
    assert high - low > 1.0  # log power: deep rings, their minima at the CTF zeros


def test_defocus_recovered_from_the_movie_within_2_percent(stigmatic_movie):
    m = stigmatic_movie
    n = m.hr_counts.shape[-1]
    k = np.arange(n // 2 + 1) / n
    band = (k / PX > 1 / 40) & (k / PX < 1 / 8.5)
    resid = _detrend(np.log(_radial_power(m.hr_counts)[band]), k[band])
    grid = np.arange(0.5, 3.0, 0.002)
    scores = [np.corrcoef(resid, _detrend(_ctf_1d(d, n)[band] ** 2, k[band]))[0, 1] for d in grid]
    found = grid[int(np.argmax(scores))]
    assert found == pytest.approx(m.ctf.defocus_mean_um, rel=0.02)


def _project_real_space(volume: np.ndarray, matrix_xyz: np.ndarray) -> np.ndarray:
    """Independent projector: rotate the map by RELION's A (scipy, trilinear) and sum along z."""
    n = volume.shape[0]
    c = np.full(3, n // 2, dtype=np.float64)
    rev = np.eye(3)[::-1]  # xyz <-> zyx
    inv_zyx = rev @ matrix_xyz.T @ rev  # output voxel o samples the map at A^T o
    rotated = ndimage.affine_transform(volume, inv_zyx, offset=c - inv_zyx @ c, order=1)
    return rotated.sum(axis=0)


@pytest.fixture(scope="module")
def chain_potential():
    """One apoferritin chain without symmetry: asymmetric, so orientations are unambiguous."""
    return build_potential(None, "C1", PX)


def test_map_projected_at_the_particle_orientation_matches_the_micrograph(chain_potential):
    cfg = dataclasses.replace(BASE, particles=3, ice=False, symmetry="C1", frames=1)
    m = simulate_movie(cfg, seed=11, potential=chain_potential)
    volume = chain_potential.hr_map().numpy()
    n = volume.shape[0]
    image = -(m.truth_noctf.numpy() - m.truth_noctf.numpy().mean())  # protein is dark
    yy, xx = np.mgrid[:n, :n] - n // 2
    mask = yy**2 + xx**2 <= (n // 2 - 1) ** 2
    for (y, x), euler in zip(m.particles_yx_px, m.particles_euler_deg, strict=True):
        rows = (round(y) - n // 2 + np.arange(n)) % image.shape[0]
        cols = (round(x) - n // 2 + np.arange(n)) % image.shape[1]
        crop = ndimage.shift(image[np.ix_(rows, cols)], (round(y) - y, round(x) - x), order=3,
                             mode="grid-wrap")  # fmt: skip
        a = euler_to_matrix(*euler)
        right = _project_real_space(volume, a)
        wrong = _project_real_space(volume, a.T)  # the inverse rotation
        corr = np.corrcoef(crop[mask], right[mask])[0, 1]
        assert corr > 0.9
        assert corr > np.corrcoef(crop[mask], wrong[mask])[0, 1] + 0.2


def test_recorded_motion_is_the_motion_applied(potential):
    # one particle, no ice, no damage, huge dose: each frame is the truth moved by the particle's
    # recorded shift (global drift + local field at the particle). A low-pass keeps the HR pixel's
    # aliasing, which differs with every sub-pixel shift, out of the comparison.
    cfg = dataclasses.replace(
        BASE, particles=1, ice=False, frames=4, dose_per_frame_e_per_a2=2e4,
        radiation_damage=False, local_motion_range_angstrom=(3.0, 3.0),
    )  # fmt: skip
    m = simulate_movie(cfg, seed=5, potential=potential)
    yx = torch.as_tensor(m.particles_yx_px, dtype=torch.float32)
    recorded = m.motion.shifts_at(yx)[:, 0].double()  # (t, 2) HR px
    global_only = m.motion.global_shifts_px.double()
    assert float(torch.linalg.norm(recorded[-1])) * PX > 4.0  # it moved
    assert float(torch.linalg.norm(recorded[-1] - global_only[-1])) > 0.2  # locally too
    for t in range(cfg.frames):
        found = estimate_shift(
            m.truth_ctf, m.hr_counts[t].float(), lowpass_cycles_per_px=0.12, upsample=100
        )
        assert torch.allclose(found, recorded[t], atol=0.02)


def test_euler_angles_round_trip_relion_convention():
    rng = np.random.default_rng(0)
    mats = random_rotations(50, rng)
    assert np.allclose(mats @ mats.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(mats), 1.0)
    eulers = matrix_to_euler(mats)
    assert np.allclose(euler_to_matrix(*eulers.T), mats, atol=1e-9)
    # RELION: A(rot=90, 0, 0) maps the map's x axis onto the image's -y axis (passive R_z)
    assert np.allclose(euler_to_matrix(90.0, 0.0, 0.0) @ [1, 0, 0], [0, -1, 0], atol=1e-12)


def test_symmetry_on_the_grid_equals_symmetry_on_the_atoms():
    atoms = read_atoms(default_model_path())
    on_grid = potential_from_atoms(atoms, symmetry="C4", pixel_size_hr_angstrom=8.0)
    on_atoms = potential_from_atoms(
        apply_symmetry(atoms, symmetry_matrices("C4")), symmetry="C1", pixel_size_hr_angstrom=8.0
    )
    assert torch.allclose(on_grid.volume_volt, on_atoms.volume_volt, atol=1e-3)
    assert len(symmetry_matrices("O")) == 24 and len(symmetry_matrices("T")) == 12


def test_detector_mtf_follows_the_shipped_table():
    k, mtf = read_mtf_table("mtf_falcon4EC_300kV.star")
    inside = k <= 0.5
    assert np.allclose(detector_mtf_1d(k[inside], detector="falcon4ec"), mtf[inside], atol=1e-6)
    assert detector_mtf_1d(np.array([1.0]), detector="k3")[0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"size_hr": 127}, OptionError),
        ({"size_hr": -64}, OptionError),
        ({"particles": -1}, OptionError),
        ({"defocus_range_um": (2.5, 0.8)}, OptionError),
        ({"detector": "film"}, OptionError),
        ({"symmetry": "I3"}, OptionError),
        ({"model": "/nonexistent/model.pdb"}, InputError),
    ],
)
def test_bad_options_raise_user_errors(changes, error):
    with pytest.raises(error):
        dataclasses.replace(BASE, **changes).validate()


def test_too_many_particles_is_a_user_error(potential):
    with pytest.raises(OptionError, match="particles"):
        simulate_movie(dataclasses.replace(BASE, particles=40), seed=0, potential=potential)


def test_pdb_and_mmcif_give_the_same_atoms_and_garbage_is_an_input_error(tmp_path):
    import gemmi

    pdb = read_atoms(default_model_path())
    structure = gemmi.read_structure(str(default_model_path()))
    structure.setup_entities()
    structure.make_mmcif_document().write_file(str(tmp_path / "model.cif"))
    cif = read_atoms(tmp_path / "model.cif")
    assert cif.elements == pdb.elements and np.allclose(cif.xyz_angstrom, pdb.xyz_angstrom)
    assert np.allclose(pdb.centre_angstrom, 136.499 / 2)  # the CRYST1 box centre
    (tmp_path / "bad.pdb").write_text("not a model\n")
    with pytest.raises(InputError):
        read_atoms(tmp_path / "bad.pdb")
