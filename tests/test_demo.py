"""``cryozssr demo`` end to end on a tiny data set: every stage runs and the report holds every row."""

from __future__ import annotations

import json

from _cli import run_cli


def test_tiny_demo_writes_a_report_with_every_method(tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    status, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "demo",
        "--out", str(out),
        "--n-movies", "1",
        "--size-hr", "192",
        "--frames", "8",
        "--particles", "2",
        "--methods", "bilinear,misr,mmse,zssr",
        "--max-iterations", "5",
        "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    assert "report:" in stdout and "misr" in stdout
    evaluation = json.loads((out / "report" / "evaluation.json").read_text())
    rows = {row["name"]: row["figures"] for row in evaluation["rows"]}
    assert set(rows) == {"LR", "bilinear", "misr", "mmse", "zssr/journal", "HR"}
    assert (out / "report" / "report.html").stat().st_size > 10_000  # plots are embedded
    # the HR movie's average is the ceiling: it holds signal past the LR Nyquist that bilinear cannot
    # (a tiny, mostly-ice field: the margin is small, but the data are fixed by the seed)
    assert rows["HR"]["frc_nyquist_1.33x"] > rows["bilinear"]["frc_nyquist_1.33x"]
    assert rows["HR"]["frc_1.33x_1.67x"] > rows["bilinear"]["frc_1.33x_1.67x"] + 0.03
    # every SR output went through the same pipeline and was written with its record
    for method in ("bilinear", "misr", "mmse", "zssr"):
        record = json.loads((out / "runs" / method / "mic_0000.json").read_text())
        assert record["output_pixel_size_angstrom"] == 1.5
