"""The report as a person sees it: rendered by headless Chromium (skipped where there is none)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch

from cryozssr.evaluate.compare import Row
from cryozssr.evaluate.report import write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_report_screenshot import find_browser, screenshot


def _rows() -> list[Row]:
    g = torch.Generator().manual_seed(0)
    lr = Row("LR", 3.0, figures={"ctf_fit_resolution_angstrom": 7.1, "n_micrographs": 2})
    lr.crop = torch.rand(64, 64, generator=g)
    sr = Row("misr", 1.5, figures={
        "score_movies": 2, "score_scored": 2, "score_recovered": 2, "score_rho": 0.4,
        "score_rho_sd": 0.02, "score_percent_of_bound": 80.0, "score_z": 40.0,
        "frc_past_nyquist": 0.45, "seconds_per_movie": 12.0, "n_micrographs": 2,
    })  # fmt: skip
    sr.crop = torch.rand(128, 128, generator=g)
    sr.truth_crop = torch.rand(128, 128, generator=g)
    return [lr, sr]


def test_the_report_reads_verdict_first_and_renders(tmp_path):
    report = write_report(
        _rows(), tmp_path / "report", meta={"command_line": "cryozssr evaluate x"},
        lr_pixel_angstrom=3.0,
    )  # fmt: skip
    page = report.read_text()
    verdict = page.index(
        "misr: recovered detail past the Nyquist: yes (80% of what the frames allow, z = 40.0"
    )
    assert verdict < page.index("All figures") < page.index("What the columns mean")
    assert "↑ higher is better" in page and "6.0–3.6 Å" in page  # bands in Angstrom
    assert "0.400 ± 0.020" in page  # spread between micrographs
    if find_browser() is None:
        pytest.skip("no Chromium installed: the rendering check needs it")
    png = screenshot(report, tmp_path / "report.png", height=1600)
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[1] == 1280 and float(pixels[..., :3].std()) > 0.05  # not a blank page
