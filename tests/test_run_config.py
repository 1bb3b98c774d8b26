"""One typed config per method, nested in ``RunConfig``; ``cryozssr run --config`` reruns a run."""

from __future__ import annotations

import json

import mrcfile
import pytest

from _cli import assert_one_clean_error, run_cli
from _synthetic import synthetic_movie
from cryozssr.baselines import MisrConfig, MmseConfig, ShiftAddConfig
from cryozssr.errors import OptionError
from cryozssr.io import write_mrc
from cryozssr.pipeline.config import RunConfig, with_options
from cryozssr.zssr import ZssrConfig, config_from_preset


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    lr, _, _ = synthetic_movie(size_hr=64, n_frames=6, seed=4)
    folder = tmp_path_factory.mktemp("movie")
    return write_mrc(folder / "m.mrc", lr.numpy(), pixel_size_angstrom=2.0, mode="uint16")


def _run(monkeypatch, capsys, movie, out, *args: str) -> tuple[int, str]:
    status, _, err = run_cli(monkeypatch, capsys, "run", str(movie), "--out", str(out), *args)
    return status, err


def test_each_method_gets_its_own_typed_defaults_and_round_trips():
    assert RunConfig().method == "mmse" and RunConfig().method_config == MmseConfig()
    assert RunConfig(method="misr").method_config == MisrConfig()
    assert RunConfig(method="shift-add").method_config == ShiftAddConfig()
    assert RunConfig(method="zssr").method_config == config_from_preset("fast")
    assert RunConfig(method="bilinear").method_config is None
    cfg = RunConfig(
        method="zssr",
        method_config=config_from_preset("paper", regime="workshop", max_iterations=7),
        motion_patches=(3, 3),
        seed=5,
    )
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and isinstance(back.method_config, ZssrConfig)


def test_bad_method_configs_are_refused_in_the_librarys_words():
    with pytest.raises(OptionError, match="takes a MisrConfig"):
        RunConfig(method="misr", method_config=MmseConfig())
    with pytest.raises(OptionError, match="regularisation must be >= 0"):
        MisrConfig(regularisation=-1)
    with pytest.raises(OptionError, match="smoothing_shells must be odd"):
        MmseConfig(smoothing_shells=2)
    with pytest.raises(OptionError, match="unknown MisrConfig option"):
        RunConfig.from_dict({"method": "misr", "method_config": {"lambda": 1}})
    with pytest.raises(OptionError, match="has no option 'snr'"):
        with_options(ShiftAddConfig(), {"snr": "3"})
    assert with_options(
        MisrConfig(), {"tile_size_px": "128", "regularisation": "0.5"}
    ) == MisrConfig(regularisation=0.5, tile_size_px=128)
    assert with_options(MisrConfig(tile_size_px=128), {"tile_size_px": "none"}) == MisrConfig()


def test_config_rerun_reproduces_the_runs_bytes(movie, tmp_path, monkeypatch, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    args = [
        "--method",
        "misr",
        "-O",
        "regularisation=0.5",
        "-O",
        "tile_size_px=16",
        "-O",
        "tile_overlap_px=4",
    ]
    status, err = _run(monkeypatch, capsys, movie, first, *args)
    assert status == 0, err
    record = json.loads((first / "m.json").read_text())
    assert record["method_config"] == {
        "regularisation": 0.5,
        "tile_size_px": 16,
        "tile_overlap_px": 4,
    }
    status, err = _run(monkeypatch, capsys, movie, again, "--config", str(first / "m.json"))
    assert status == 0, err
    assert json.loads((again / "m.json").read_text())["config"] == record["config"]
    for name in ("m_sr.mrc", "m_avg.mrc"):
        assert (again / name).read_bytes() == (first / name).read_bytes()
    # the options took effect: the default misr gives other bytes
    default = tmp_path / "default"
    status, err = _run(monkeypatch, capsys, movie, default, "--method", "misr")
    assert status == 0, err
    assert (
        mrcfile.read(default / "m_sr.mrc").tobytes() != mrcfile.read(first / "m_sr.mrc").tobytes()
    )


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--config", "missing.json"], "cannot read"),
        (["--method", "bilinear", "-O", "x=1"], "has no --option"),
        (["--method", "misr", "-O", "regularisation"], "NAME=VALUE"),
        (["--method", "misr", "-O", "regularisation=lots"], "regularisation"),
        (["--method", "shift-add", "-O", "tile_size_px=8"], "no option 'tile_size_px'"),
    ],
)
def test_bad_config_options_are_one_clean_line(
    movie, tmp_path, monkeypatch, capsys, extra, fragment
):
    status, err = _run(monkeypatch, capsys, movie, tmp_path / "o", *extra)
    assert_one_clean_error(status, err, fragment)


def test_config_refuses_run_options_beside_it(movie, tmp_path, monkeypatch, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(RunConfig(method="bilinear").to_dict()))
    status, err = _run(
        monkeypatch, capsys, movie, tmp_path / "o", "--config", str(path), "-m", "misr"
    )
    assert_one_clean_error(status, err, "--config", "--method")
