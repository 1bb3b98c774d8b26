"""The no-truth alias score: real past-Nyquist detail scores high, interpolation and noise score ~0."""

from __future__ import annotations

import pytest
import torch

from _synthetic import synthetic_movie
from cryozssr.baselines import misr, upsample
from cryozssr.dose import Exposure
from cryozssr.errors import OptionError
from cryozssr.evaluate.frc import register_and_frc
from cryozssr.evaluate.score import (
    alias_score,
    check_folds,
    fit_frames,
    interpolation_baselines,
    measure_frames,
    plan_folds,
    score_record,
)
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift
from cryozssr.pipeline.config import RunConfig


@pytest.fixture(scope="module")
def movie():
    lr, shifts, scene = synthetic_movie(size_hr=192, n_frames=16, counts_per_hr_px=8.0, seed=3)
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    return lr.float(), motion, scene.double() * 8.0  # truth in counts per HR px per frame


def _score(lr, motion, make, *, n_folds=4, exposure=None):
    """``make(frames, motion)`` run on all frames but each fold's held-out ones, scored."""
    held = plan_folds(lr.shape[0], n_folds=n_folds)
    baselines = interpolation_baselines(lr, motion, held, exposure=exposure)
    side = measure_frames(
        lr, motion.global_shifts_px, held_out=held, exposure=exposure, baselines=baselines
    )
    fits = (fit_frames(lr.shape[0], h) for h in held)
    return alias_score(side, (make(lr[f], motion.select(f)).double() for f in fits))


def _oracle(lr, motion, truth, *, n_folds=4, exposure=None):
    return _score(lr, motion, lambda *_: truth, n_folds=n_folds, exposure=exposure)


def test_the_truth_itself_scores_one_and_a_real_reconstruction_is_recovered(movie):
    lr, motion, truth = movie
    oracle = _oracle(lr, motion, truth)
    assert oracle.rho == pytest.approx(1.0, abs=0.1) and oracle.recovered
    sr = _score(lr, motion, misr)
    assert sr.rho is not None and 0.3 < sr.rho < oracle.rho
    assert sr.recovered and "yes" in sr.verdict()
    # the truth explains all of the frames' aliased signal, more than any estimate from them can
    assert oracle.explained_share == pytest.approx(1.0, abs=0.2)
    assert oracle.fraction_of_bound > 2 and sr.explained_share_bound < 0.5


@pytest.mark.parametrize("counts", [8.0, 800.0])
def test_what_the_frames_allow_is_the_wiener_bound_reached_by_misr_and_one_without_noise(counts):
    lr, shifts, scene = synthetic_movie(size_hr=192, n_frames=16, counts_per_hr_px=counts, seed=3)
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    lr = lr.float()
    sr = _score(lr, motion, misr)
    oracle = _oracle(lr, motion, scene.double())
    # misr solves the aliasing by least squares, close to the Wiener estimate at these counts
    assert sr.fraction_of_bound == pytest.approx(1.0, abs=0.15)
    assert f"{100 * sr.fraction_of_bound:.0f}% (± " in sr.verdict()
    assert 0 < sr.fraction_of_bound_se < 0.3  # the bound's own noise, stated
    # the noiseless limit: the frames allow everything and the truth is 100% of it
    if counts > 100:
        assert sr.explained_share_bound > 0.9
        assert oracle.fraction_of_bound == pytest.approx(1.0, abs=0.1)
    else:
        assert sr.explained_share_bound < 0.5 and oracle.fraction_of_bound > 2


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "fourier"])
def test_interpolation_recovers_nothing(movie, method):
    lr, motion, _ = movie
    exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=None)

    def interpolate(frames, sub):
        average = dose_weighted_average(frames, sub, exposure=exposure)
        return upsample(average, method=method)

    score = _score(lr, motion, interpolate)
    assert score.rho is not None and abs(score.rho) < 0.1  # rho^2 < 1% of what the frames allow
    assert not score.recovered and "no" in score.verdict()
    if method == "bilinear":  # the baseline itself: nothing beyond it, by construction
        assert score.z_beyond == 0.0 and score.rho_beyond == 0.0


def _mirror_movie(n_frames=20, size_hr=192, counts=100.0):
    """A specimen whose detail past the Nyquist is 80% a mirror of its in-band content (a
    bilinear 2x of an LR image) and 20% independent texture: interpolation predicts part of the
    frames' aliasing because the specimen is symmetric so, not because it recovers anything."""
    from _synthetic import band_limited_scene

    g = torch.Generator().manual_seed(7)
    mirror = upsample(band_limited_scene(size_hr // 2, seed=11, cutoff=0.6), method="bilinear")
    scene = 0.8 * mirror + 0.2 * band_limited_scene(size_hr, seed=12)
    t = torch.arange(n_frames, dtype=torch.float64)
    shifts = torch.stack([2.0 * t.sqrt(), -1.3 * t.sqrt()], -1)
    shifts = shifts + 0.15 * torch.randn(n_frames, 2, generator=g, dtype=torch.float64)
    shifts[0] = 0
    hr = fourier_shift(scene.expand(n_frames, -1, -1), 2 * shifts) * counts
    lr = torch.poisson(box_sum(hr.clamp(min=0)), generator=g).float()
    return lr, MotionField(shifts.float(), (size_hr // 2, size_hr // 2)), scene.double() * counts


def test_interpolation_of_a_symmetric_specimen_recovers_nothing_beyond_interpolation():
    lr, motion, truth = _mirror_movie()
    exposure = Exposure(pixel_size_angstrom=1.0)

    def interpolation(method):
        def make(frames, sub):
            return upsample(dose_weighted_average(frames, sub, exposure=exposure), method=method)

        return make

    bilinear = _score(lr, motion, interpolation("bilinear"))
    # the raw score is right that bilinear's detail matches the specimen here (so does the truth)
    assert bilinear.z > 6 and bilinear.explained_share > 0.01
    assert register_and_frc(interpolation("bilinear")(lr, motion).double(), truth).past_nyquist > 0
    for method in ("bilinear", "bicubic", "fourier"):
        score = _score(lr, motion, interpolation(method))
        assert not score.recovered and score.z_beyond < 4, method
        assert score.to_dict()["z"] == score.z  # the raw z stays in the record
    sr = _score(lr, motion, misr)  # a real reconstruction predicts what interpolation cannot
    assert sr.recovered and sr.z_beyond > 10 and sr.rho_beyond > 0.3
    # with K = 4 folds (5 held-out frames each) the bound is still measured (on the half sets)
    assert sr.n_folds == 4 and sr.bound_z > 3 and sr.fraction_of_bound is not None
    assert sr.fraction_of_bound == pytest.approx(1.0, abs=0.25)
    assert "% (± " in sr.verdict()


def test_score_folds_are_checked_as_options():
    check_folds(4, 20)
    with pytest.raises(ValueError, match="at least 2 folds"):
        check_folds(1)
    with pytest.raises(ValueError, match=r"5 folds need at least 25 frames.*use at most 4"):
        check_folds(5, 24)
    with pytest.raises(OptionError, match="--score-folds 1: must be at least 2"):
        RunConfig(half_sets=True, score_folds=1)
    with pytest.raises(OptionError, match="with --half-sets only"):
        RunConfig(score_folds=4)
    cfg = RunConfig(half_sets=True, score_folds=3)
    assert RunConfig.from_dict(cfg.to_dict()).score_folds == 3


def test_a_noise_only_movie_scores_zero_within_noise():
    g = torch.Generator().manual_seed(5)
    shifts = torch.rand(16, 2, generator=g, dtype=torch.float64) * 3
    flat = torch.poisson(torch.full((16, 192, 192), 8.0, dtype=torch.float64), generator=g)
    lr = box_sum(flat).float()
    motion = MotionField(shifts.float(), (96, 96))
    score = _score(lr, motion, misr)
    assert abs(score.z) < 4  # z ~ N(0, 1) for a method that recovers nothing
    assert not score.recovered


def test_dose_weighting_keeps_the_oracle_at_one():
    """A movie with radiation damage (each frame's exposure filter applied to the specimen): the
    model with the dose predicts the truth's aliasing as a model without it cannot."""
    from cryozssr.dose import exposure_filter_rfft, movie_frame_doses
    from cryozssr.ops import fourier_shift

    _, shifts, scene = synthetic_movie(size_hr=192, n_frames=20, counts_per_hr_px=8.0, seed=3)
    exposure = Exposure(pixel_size_angstrom=2.0, dose_per_frame_e_per_a2=1.0)
    filters = exposure_filter_rfft(
        (192, 192), movie_frame_doses(exposure, 20), pixel_size_angstrom=1.0
    ).double()
    hr = fourier_shift(scene.double().expand(20, -1, -1), 2 * shifts.double()) * 80.0
    hr = torch.fft.irfft2(torch.fft.rfft2(hr) * filters, s=(192, 192))
    g = torch.Generator().manual_seed(4)
    lr = torch.poisson(box_sum(hr.clamp(min=0)), generator=g).float()
    motion = MotionField(shifts, (96, 96))
    truth = scene.double() * 80.0
    with_dose = _oracle(lr, motion, truth, exposure=exposure)
    without = _oracle(lr, motion, truth, exposure=Exposure(pixel_size_angstrom=2.0))
    assert with_dose.rho == pytest.approx(1.0, abs=0.1) and with_dose.z > 1.2 * without.z


def test_too_few_frames_and_wrong_sizes_are_clear_errors(movie):
    lr, motion, truth = movie
    with pytest.raises(ValueError, match="at least 10 frames"):
        plan_folds(9)
    with pytest.raises(ValueError, match="at least 2 folds"):
        plan_folds(16, n_folds=1)
    assert plan_folds(20) == [
        [0, 4, 8, 12, 16],
        [1, 5, 9, 13, 17],
        [2, 6, 10, 14, 18],
        [3, 7, 11, 15, 19],
    ]
    assert plan_folds(16) == [[0, 3, 6, 9, 12, 15], [1, 4, 7, 10, 13], [2, 5, 8, 11, 14]]
    assert plan_folds(10) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]  # the half sets
    side = measure_frames(lr, motion.global_shifts_px, held_out=plan_folds(16))
    with pytest.raises(ValueError, match="fit images must be"):
        alias_score(side, [truth[:-2]] * 3)
    with pytest.raises(ValueError, match="3 folds need 3 fit images, got 2"):
        alias_score(side, [truth] * 2)
    record = score_record(lr, motion.global_shifts_px, fits=[truth] * 2, held_out=plan_folds(16))
    assert "error" in record and record["verdict"].startswith("not scored")


def test_a_method_better_on_the_whole_movie_ranks_first_though_worse_on_half_of_it():
    """Two reconstructions with a known quality per frame count: the truth plus white noise of
    SD ``a / n`` (gains fast with frames) and ``b / sqrt(n)``, equal at n = 12.5 of 20 frames. On
    the whole movie the first is better (noise SD 1.06 against 1.34); on half of it, worse."""
    lr, shifts, scene = synthetic_movie(size_hr=192, n_frames=20, counts_per_hr_px=8.0, seed=3)
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    truth = scene.double() * 8.0
    b = 6.0
    a = b * 12.5**0.5

    def method(power, scale):
        def make(frames, _):
            # the same noise pattern for both from the same frames, as the frames' own noise is
            g = torch.Generator().manual_seed(int(frames[:, :2, :2].sum()))
            noise = torch.randn(truth.shape, generator=g, dtype=torch.float64)
            return truth + scale / frames.shape[0] ** power * noise

        return make

    fast, slow = method(1.0, a), method(0.5, b)
    assert a / 20 < b / 20**0.5  # the truth's order on the whole movie
    lr = lr.float()
    cv = [_score(lr, motion, m) for m in (fast, slow)]  # fits from 15 of 20 frames
    assert cv[0].rho > cv[1].rho + 0.02 and cv[0].z > cv[1].z
    halves = [_score(lr, motion, m, n_folds=2) for m in (fast, slow)]  # from 10 of 20 frames
    assert halves[0].rho < halves[1].rho - 0.02


@pytest.mark.parametrize("method", ["misr", "bilinear"])
def test_run_records_the_score_and_evaluate_gives_the_verdict_without_truth(
    tmp_path, monkeypatch, capsys, method
):
    import json

    from _cli import run_cli
    from cryozssr.io import write_mrc

    lr, _, _ = synthetic_movie(size_hr=192, n_frames=16, counts_per_hr_px=8.0, seed=3)
    movie_path = write_mrc(tmp_path / "mov.mrc", lr.numpy(), pixel_size_angstrom=3.0, mode="uint16")
    run_dir = tmp_path / method
    status, _, err = run_cli(
        monkeypatch, capsys, "run", str(movie_path), "--out", str(run_dir),
        "--method", method, "--half-sets", "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    record = json.loads((run_dir / "mov.json").read_text())
    score = record["alias_score"]
    assert score["recovered"] is (method == "misr") and "alias_score" in record["timings_seconds"]
    status, stdout, err = run_cli(
        monkeypatch, capsys, "evaluate", str(run_dir), "--out", str(tmp_path / "eval"),
        "--tile", "64",
    )  # fmt: skip
    assert status == 0, err
    assert max(len(line) for line in stdout.splitlines()) <= 80  # the terminal summary fits
    assert ("yes" if method == "misr" else "no") in stdout
    html = (tmp_path / "eval" / "report.html").read_text()
    assert f"{method}: recovered detail past the Nyquist: " in html
    rows = {
        r["name"]: r["figures"]
        for r in json.loads((tmp_path / "eval" / "evaluation.json").read_text())["rows"]
    }
    assert rows[method]["score_scored"] == 1
    assert rows[method]["score_rho"] == pytest.approx(score["rho"])


def test_evaluate_scores_only_the_movies_the_manifest_says_are_done(tmp_path, monkeypatch, capsys):
    import json
    import shutil

    from _cli import run_cli
    from _synthetic import write_movies

    movies = write_movies(tmp_path, 2, prefix="m", seed=1, size_hr=192, n_frames=12)
    bad = tmp_path / "m_bad.mrc"
    bad.write_bytes(movies[0].read_bytes()[:2000])  # truncated: recorded as failed
    run_dir = tmp_path / "run"
    status, _, err = run_cli(
        monkeypatch, capsys, "run", *map(str, [*movies, bad]), "--out", str(run_dir),
        "--method", "misr", "--half-sets", "--device", "cpu",
    )  # fmt: skip
    assert status == 3, err
    # stale files of the failed movie and of one killed before its manifest entry: left out
    for stem in ("m_bad", "m_killed"):
        record = json.loads((run_dir / "m0.json").read_text()) | {"stem": stem}
        record["outputs"] = {k: v.replace("m0", stem) for k, v in record["outputs"].items()}
        (run_dir / f"{stem}.json").write_text(json.dumps(record))
        for src in run_dir.glob("m0_*.mrc"):
            shutil.copy(src, run_dir / src.name.replace("m0", stem))
    status, _, err = run_cli(
        monkeypatch, capsys, "evaluate", str(run_dir), "--out", str(tmp_path / "eval"),
        "--tile", "64",
    )  # fmt: skip
    assert status == 0, err
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    rows = {r["name"]: r["figures"] for r in evaluation["rows"]}
    assert rows["misr"]["score_movies"] == 2 and rows["misr"]["n_micrographs"] == 2
    html = (tmp_path / "eval" / "report.html").read_text()
    assert "2 movie(s) left out" in html and "m_bad: failed" in html and "m_killed: not in" in html


def test_a_movie_larger_than_the_region_is_scored_on_its_central_square(movie, monkeypatch):
    # the frames' side keeps ~24 bytes per LR px and frame (22 GB for a K3 movie): a large movie
    # is scored on its central square. Cut one HR px off from the frames', the truth would lose
    # its score; cut right, it keeps rho ~ 1 and a misr reconstruction stays recovered
    import cryozssr.evaluate.score as score

    lr, motion, truth = movie
    held = plan_folds(lr.shape[0])
    fits = [truth] * len(held)
    monkeypatch.setattr(score, "MAX_REGION_LR_PX", 84)
    whole = score_record(lr, motion.global_shifts_px, fits=fits, held_out=held)
    assert whole["region_lr_px"] == [6, 6, 84, 84]
    assert whole["rho"] == pytest.approx(1.0, abs=0.15) and whole["recovered"]
    shifted = [torch.roll(truth, 1, dims=-1)] * len(held)
    off = score_record(lr, motion.global_shifts_px, fits=shifted, held_out=held)
    assert off["z"] < whole["z"] / 2
    fits = [misr(lr[f], motion.select(f)).double() for f in (fit_frames(16, h) for h in held)]
    sr = score_record(lr, motion.global_shifts_px, fits=fits, held_out=held)
    assert sr["recovered"] and 0.2 < sr["rho"] < whole["rho"]


def test_a_large_movies_fold_runs_are_made_on_its_square_and_a_margin(monkeypatch):
    # the method's fold runs and the baselines of a movie larger than the square are made on the
    # square and SCORE_MARGIN_LR_PX around it (a K3 movie: 1152 px of 5760 x 4092), not on the
    # whole movie: the same verdict, z within 1% (misr here, 0.2% measured), on the square's
    # place in the movie
    import cryozssr.evaluate.score as score
    from cryozssr.frames import GainCorrected
    from cryozssr.pipeline import methods
    from cryozssr.pipeline import movie as pipeline_movie

    lr, shifts, _ = synthetic_movie(size_hr=256, n_frames=16, counts_per_hr_px=8.0, seed=3)
    lr, motion = lr.float(), MotionField(shifts, (128, 128))
    exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=None)
    cfg = RunConfig(method="misr", half_sets=True, device="cpu")
    seen = []
    original = methods.super_resolve

    def spy(inputs, *args, **kwargs):
        seen.append(tuple(inputs.frames.shape[-2:]))
        return original(inputs, *args, **kwargs)

    monkeypatch.setattr(methods, "super_resolve", spy)
    monkeypatch.setattr(score, "MAX_REGION_LR_PX", 84)
    monkeypatch.setattr(score, "SCORE_MARGIN_LR_PX", 16)
    boxed = pipeline_movie._score(lr, motion, exposure, cfg, [], "m", None)
    assert seen == [(116, 116)] * 3  # 3 folds of 16 frames, each on the box [6, 6, 116, 116]
    monkeypatch.setattr(score, "SCORE_MARGIN_LR_PX", 1000)  # the box is the whole movie
    whole = pipeline_movie._score(lr, motion, exposure, cfg, [], "m", None)
    assert seen[3:] == [(128, 128)] * 3
    assert boxed["region_lr_px"] == whole["region_lr_px"] == [22, 22, 84, 84]
    assert boxed["recovered"] and whole["recovered"]
    assert boxed["z"] == pytest.approx(whole["z"], rel=0.01)
    # a movie held as integer counts and a gain is cut to the box as a tensor: the same score
    monkeypatch.setattr(score, "SCORE_MARGIN_LR_PX", 16)
    gain = torch.full((128, 128), 0.5)
    counts = GainCorrected(lr.round().to(torch.int16), gain)
    assert pipeline_movie._score(counts, motion, exposure, cfg, [], "m", None) == (
        pipeline_movie._score(lr.round() * 0.5, motion, exposure, cfg, [], "m", None)
    )
    # with 2 folds the half sets are the fits: cut to the box, no more runs of the method
    halves = [misr(lr[i::2], motion.select(list(range(i, 16, 2)))) for i in (0, 1)]
    cfg = RunConfig(method="misr", half_sets=True, score_folds=2, device="cpu")
    runs = len(seen)
    two = pipeline_movie._score(lr, motion, exposure, cfg, halves, "m", None)
    assert len(seen) == runs and two["n_folds"] == 2 and two["recovered"]
    assert two["region_lr_px"] == [22, 22, 84, 84]


def test_local_motion_moves_the_prediction_of_each_held_out_frame(monkeypatch):
    """Frames made with a known local field (a turn about the centre, up to 0.9 LR px beyond the
    global drift, growing with time): with the field, the truth predicts every held-out frame's
    aliasing (rho ~ 1); with the global trajectory alone it loses a third of it."""
    from cryozssr.motion.warp import tile_centres, tiled_shift

    lr0, shifts, scene = synthetic_movie(size_hr=192, n_frames=16, counts_per_hr_px=8.0, seed=3)
    t = shifts.shape[0]
    grid = torch.linspace(-1, 1, 3)
    ramp = torch.arange(t, dtype=torch.float32) / (t - 1)
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")  # a turn about the centre
    local = torch.stack([0.9 * gx, -0.9 * gy], -1) * ramp[:, None, None, None]
    motion = MotionField(shifts, tuple(lr0.shape[-2:]), local.contiguous())
    hr_motion = motion.scaled(2)
    cy, cx = tile_centres((192, 192), 32)
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    at = hr_motion.shifts_at(torch.stack([yy.flatten(), xx.flatten()], -1))
    hr = torch.stack([
        tiled_shift(scene.double() * 8.0, at[i].reshape(len(cy), len(cx), 2).double(), tile_px=32)
        for i in range(t)
    ])  # fmt: skip
    g = torch.Generator().manual_seed(9)
    lr = torch.poisson(box_sum(hr.clamp(min=0)), generator=g).float()
    held = plan_folds(t)
    truth = scene.double() * 8.0
    with_field = score_record(lr, motion, fits=[truth] * len(held), held_out=held)
    global_only = score_record(lr, motion.global_shifts_px, fits=[truth] * len(held), held_out=held)
    assert with_field["rho"] == pytest.approx(1.0, abs=0.15) and with_field["recovered"]
    # measured: rho 0.95 and z 50 with the field; 0.64 and 34 with the global shifts alone
    assert global_only["rho"] < 0.8 and with_field["z"] > 1.3 * global_only["z"]
    # on a central square the field is taken at the square's own positions
    import cryozssr.evaluate.score as score

    monkeypatch.setattr(score, "MAX_REGION_LR_PX", 84)
    square = score_record(lr, motion, fits=[truth] * len(held), held_out=held)
    assert square["region_lr_px"] == [6, 6, 84, 84]
    assert square["rho"] == pytest.approx(1.0, abs=0.15) and square["recovered"]
    monkeypatch.undo()
    # noise alone on the local path: misr's fits of a flat movie predict nothing
    flat = torch.poisson(torch.full((t, 192, 192), 8.0, dtype=torch.float64), generator=g)
    flat = box_sum(flat).float()
    fits = [misr(flat[f], motion.select(f)).double() for f in (fit_frames(t, h) for h in held)]
    noise = score_record(flat, motion, fits=fits, held_out=held)
    assert abs(noise["z"]) < 4 and not noise["recovered"]
    # a motion field without a local part scores exactly as its global shifts
    plain = MotionField(shifts, tuple(lr0.shape[-2:]))
    a = score_record(lr0.float(), plain, fits=[truth] * len(held), held_out=held)
    b = score_record(lr0.float(), shifts, fits=[truth] * len(held), held_out=held)
    assert a["z"] == b["z"]
