"""``cryozssr evaluate`` end to end on a tiny simulated dataset, and its user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
import torch
import torch.nn.functional as F
from torch_ctf import calculate_ctf_2d
from torch_fourier_slice import project_3d_to_2d

from cryozssr.cli.app import main
from cryozssr.evaluate import relion_euler_to_matrix
from cryozssr.io import write_mrc
from cryozssr.ops import box_sum

HR_PX, BOX, SIZE, FRAMES = 2.0, 32, 256, 6
DEFOCUS = (15000.0, 14500.0, 20.0)


def blobs(d: int) -> torch.Tensor:
    r = torch.arange(d, dtype=torch.float64) - d // 2
    vol = torch.zeros(d, d, d, dtype=torch.float64)
    for z, y, x in [(0, 0, 6), (4, -3, 0), (-4, 5, 2), (2, 2, -5), (-5, -4, -3), (6, 3, 4)]:
        g = (r[:, None, None] - z) ** 2 + (r[None, :, None] - y) ** 2 + (r[None, None, :] - x) ** 2
        vol += torch.exp(-g / (2 * 1.5**2))
    return vol


def make_dataset(root: Path, *, n_mics: int = 2, dose_hr: float = 40.0) -> tuple[Path, Path]:
    """A simulation folder and a `cryozssr run`-like folder of bilinear upsamplings."""
    sim, run = root / "sim", root / "bilinear"
    for sub in ("truth", "movies_hr", "movies_lr"):
        (sim / sub).mkdir(parents=True)
    run.mkdir()
    vol = blobs(BOX)
    write_mrc(sim / "map.mrc", vol.float(), pixel_size_angstrom=HR_PX, volume=True)
    (sim / "simulation.json").write_text(json.dumps({"config": {"symmetry": "C1"}}))
    g = torch.Generator().manual_seed(0)
    rows = []
    ctf = calculate_ctf_2d(
        defocus=(DEFOCUS[0] + DEFOCUS[1]) / 2e4, astigmatism=(DEFOCUS[0] - DEFOCUS[1]) / 2e4,
        astigmatism_angle=DEFOCUS[2], voltage=300.0, spherical_aberration=2.7,
        amplitude_contrast=0.07, phase_shift=0.0, pixel_size=HR_PX, image_shape=(SIZE, SIZE),
        rfft=True, fftshift=False,
    ).double()  # fmt: skip
    for m in range(n_mics):
        stem = f"mic_{m:04d}"
        centres = [(y, x) for y in range(24, SIZE - 24, 26) for x in range(24, SIZE - 24, 26)]
        n = len(centres)
        angles = torch.stack(
            [torch.rand(n, generator=g, dtype=torch.float64) * 360,
             torch.rad2deg(torch.arccos(2 * torch.rand(n, generator=g, dtype=torch.float64) - 1)),
             torch.rand(n, generator=g, dtype=torch.float64) * 360], -1,
        )  # fmt: skip
        proj = project_3d_to_2d(
            vol.float(), relion_euler_to_matrix(angles).transpose(-1, -2).float()
        )
        phase = torch.zeros(SIZE, SIZE, dtype=torch.float64)
        for (y, x), p in zip(centres, proj.double(), strict=True):
            phase[y - BOX // 2 : y + BOX // 2, x - BOX // 2 : x + BOX // 2] += p
        truth = torch.fft.irfft2(torch.fft.rfft2(phase) * ctf, s=(SIZE, SIZE))
        # as cryozssr simulate: counts = dose (1 - 2 phase * CTF), protein dark
        rate = (dose_hr * (1 - 0.5 * truth / truth.std())).clamp(min=0)
        write_mrc(sim / "truth" / f"{stem}_ctf.mrc", rate.float(), pixel_size_angstrom=HR_PX)
        frames = torch.poisson(rate.expand(FRAMES, -1, -1).contiguous(), generator=g)
        write_mrc(sim / "movies_hr" / f"{stem}.mrc", frames, pixel_size_angstrom=HR_PX)
        lr = box_sum(frames)
        write_mrc(sim / "movies_lr" / f"{stem}.mrc", lr, pixel_size_angstrom=2 * HR_PX)
        for (y, x), a in zip(centres, angles.tolist(), strict=True):
            rows.append([f"movies_lr/{stem}.mrc", float(x), float(y), *a, *DEFOCUS])
        avg = lr.mean(0)
        write_mrc(run / f"{stem}_avg.mrc", avg, pixel_size_angstrom=2 * HR_PX)

        def up(img):
            return F.interpolate(img[None, None], scale_factor=2, mode="bilinear")[0, 0] / 4

        write_mrc(run / f"{stem}_sr.mrc", up(avg), pixel_size_angstrom=HR_PX)
        write_mrc(run / f"{stem}_sr_even.mrc", up(lr[0::2].mean(0)), pixel_size_angstrom=HR_PX)
        write_mrc(run / f"{stem}_sr_odd.mrc", up(lr[1::2].mean(0)), pixel_size_angstrom=HR_PX)
        record = {
            "method": "bilinear", "stem": stem, "input_pixel_size_angstrom": 2 * HR_PX,
            "output_pixel_size_angstrom": HR_PX, "seed": 0, "config": {},
            "outputs": {"sr": f"{stem}_sr.mrc", "avg": f"{stem}_avg.mrc",
                        "sr_even": f"{stem}_sr_even.mrc", "sr_odd": f"{stem}_sr_odd.mrc"},
            "exposure": {"pixel_size_angstrom": 2 * HR_PX, "dose_per_frame_e_per_a2": dose_hr / 4,
                         "voltage_kv": 300.0, "spherical_aberration_mm": 2.7,
                         "amplitude_contrast": 0.07},
        }  # fmt: skip
        (run / f"{stem}.json").write_text(json.dumps(record))
    cols = ["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAngleRot",
            "rlnAngleTilt", "rlnAnglePsi", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"]  # fmt: skip
    starfile.write({"particles": pd.DataFrame(rows, columns=cols)}, sim / "particles.star")
    return sim, run


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cryozssr", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def assert_one_clean_error(status: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith("cryozssr: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("evaluate"))


def test_evaluate_ranks_hr_above_bilinear_and_writes_the_report(dataset, monkeypatch, capsys):
    sim, run = dataset
    out = run.parent / "eval"
    status, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        str(run),
        "--truth",
        str(sim),
        "--out",
        str(out),
        "--tile",
        "128",
    )
    assert status == 0, err
    assert "bilinear" in stdout and "HR" in stdout
    data = json.loads((out / "evaluation.json").read_text())
    rows = {r["name"]: r["figures"] for r in data["rows"]}
    assert list(rows) == ["LR", "bilinear", "HR"]
    hr, bil, lr = rows["HR"], rows["bilinear"], rows["LR"]
    # the ceiling carries detail past the LR Nyquist that interpolation cannot invent
    assert hr["frc_nyquist_1.33x"] > 0.5 > bil["frc_nyquist_1.33x"]
    assert hr["frc_nyquist_1.33x_vs_hr"] == pytest.approx(1.0)
    assert bil["frc_nyquist_1.33x_vs_hr"] < 0.7
    assert "frc_nyquist_1.33x" not in lr  # the LR grid stops at its Nyquist
    assert bil["half_frc_below_nyquist"] > 0.3
    # CTF: defocus within 2 % on HR; the fit reaches further on HR than on LR
    assert hr["ctf_defocus_error_percent"] < 2.0
    assert hr["ctf_fit_resolution_angstrom"] < lr["ctf_fit_resolution_angstrom"]
    # 3D from oracle poses: HR resolves finer than LR (LR cannot pass its 8 A Nyquist)
    assert lr["fsc_truth_0.5_angstrom"] >= 8.0
    assert hr["fsc_truth_0.5_angstrom"] < lr["fsc_truth_0.5_angstrom"]
    assert hr["fsc_half_0.143_angstrom"] < 8.0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "crops.png", "ctf_profiles.png", "frc.png", "fsc.png", "spectra.png",
    ]  # fmt: skip


def test_run_dir_without_outputs_is_one_clean_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    status, _, err = run_cli(monkeypatch, capsys, "evaluate", str(tmp_path / "empty"))
    assert_one_clean_error(status, err, "no run records")


def test_missing_sr_file_and_missing_truth_files_are_clean_errors(
    dataset, tmp_path, monkeypatch, capsys
):
    _, run = dataset
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mic_0000.json").write_text((run / "mic_0000.json").read_text())
    status, _, err = run_cli(monkeypatch, capsys, "evaluate", str(broken))
    assert_one_clean_error(status, err, "mic_0000_sr.mrc is missing")
    bad_sim = tmp_path / "sim"
    bad_sim.mkdir()
    (bad_sim / "simulation.json").write_text("{}")
    status, _, err = run_cli(monkeypatch, capsys, "evaluate", str(run), "--truth", str(bad_sim))
    assert_one_clean_error(status, err, "particles.star missing")


def test_mismatched_truth_size_and_bad_symmetry_are_clean_errors(
    dataset, tmp_path, monkeypatch, capsys
):
    sim, run = dataset
    status, _, err = run_cli(monkeypatch, capsys, "evaluate", str(run), "--symmetry", "X7")
    assert_one_clean_error(status, err, "--symmetry")
    small = tmp_path / "sim_small"
    small.mkdir()
    for name in ("simulation.json", "particles.star", "map.mrc"):
        (small / name).write_bytes((sim / name).read_bytes())
    (small / "truth").mkdir()
    for stem in ("mic_0000", "mic_0001"):
        write_mrc(
            small / "truth" / f"{stem}_ctf.mrc",
            np.zeros((64, 64), np.float32),
            pixel_size_angstrom=HR_PX,
        )
    status, _, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        str(run),
        "--truth",
        str(small),
        "--no-3d",
        "--out",
        str(tmp_path / "o"),
    )
    assert_one_clean_error(status, err, "does not match")


def test_without_truth_gives_half_set_frc_and_ctf_fits_only(dataset, tmp_path, monkeypatch, capsys):
    _, run = dataset
    out = tmp_path / "eval"
    status, _, err = run_cli(
        monkeypatch, capsys, "evaluate", str(run), "--out", str(out), "--tile", "128"
    )
    assert status == 0, err
    rows = {
        r["name"]: r["figures"] for r in json.loads((out / "evaluation.json").read_text())["rows"]
    }
    assert list(rows) == ["LR", "bilinear"]  # no truth: no HR ceiling, no FRC vs truth, no 3D
    assert (
        "frc_below_nyquist" not in rows["bilinear"] and "fsc_half_0.143_angstrom" not in rows["LR"]
    )
    # even and odd frames carry independent noise: their FRC is high below Nyquist only
    assert rows["bilinear"]["half_frc_below_nyquist"] > 0.3
    assert (
        abs(rows["LR"]["ctf_fits"]["mic_0000"]["defocus_u_angstrom"] - DEFOCUS[0])
        < 0.02 * DEFOCUS[0]
    )


def test_importing_the_report_sets_no_matplotlib_backend():
    """No global state at import: the report draws on Figure objects, pyplot is never loaded."""
    code = (
        "import sys, cryozssr.evaluate.report\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
