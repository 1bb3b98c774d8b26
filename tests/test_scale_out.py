"""Scale-out: 2 Dask workers (processes) and 2 local worker processes give the serial run's bytes."""

from __future__ import annotations

import pytest

from _cli import run_cli, run_cli_quiet
from _synthetic import write_movies
from cryozssr.pipeline import manifest as mf

N = 4


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    return write_movies(tmp_path_factory.mktemp("scale_movies"), N, prefix="s", seed=70)


def _args(movies, out, *extra):
    return ["run", *map(str, movies), "--out", str(out), "--method", "misr", "--device", "cpu",
            "--threads", "1", *extra]  # fmt: skip


def _results(out):
    return {
        p.name: p.read_bytes() for p in sorted(out.glob("*_sr.*")) if p.suffix in (".mrc", ".star")
    }


@pytest.fixture(scope="module")
def serial(movies, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    assert run_cli_quiet(*_args(movies, out)) == 0
    return out


def test_two_dask_workers_give_the_serial_bytes(movies, serial, tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = tmp_path / "out"
        status, _, err = run_cli(
            monkeypatch, capsys, *_args(movies, out, "--dask", cluster.scheduler_address)
        )
        assert status == 0, err
        workers = {e["host"] for e in mf.read_manifest(out)["movies"].values()}
    assert _results(out) == _results(serial)
    assert len(workers) == 2  # both workers took movies


def test_two_local_workers_give_the_serial_bytes(movies, serial, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    status, _, err = run_cli(monkeypatch, capsys, *_args(movies, out, "--workers", "2"))
    assert status == 0, err
    assert _results(out) == _results(serial)
    assert len({e["host"] for e in mf.read_manifest(out)["movies"].values()}) == 2


def test_an_unreachable_scheduler_is_one_clean_line(movies, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    status, _, err = run_cli(
        monkeypatch, capsys, *_args(movies[:1], tmp_path / "o", "--dask", "tcp://127.0.0.1:9")
    )
    assert status == 2 and err.strip().splitlines()[-1].startswith("cryozssr: error: --dask")
