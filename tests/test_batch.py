"""The batch runner: recorded failures, exit statuses, resume after kill -9, two processes, claims."""

from __future__ import annotations

import json
import os
import random
import signal
import time

import numpy as np
import pytest
import starfile
import torch

from _cli import fork_cli, run_cli, run_cli_quiet, wait_status
from _synthetic import write_movies
from cryozssr.io.prefetch import prefetch_file
from cryozssr.pipeline import manifest as mf
from cryozssr.pipeline.runner import EXIT_PARTIAL

N_MOVIES = 6


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    return write_movies(tmp_path_factory.mktemp("batch_movies"), N_MOVIES, prefix="m", seed=10)


def _args(paths, out, method="misr", *extra):
    return ["run", *map(str, paths), "--out", str(out), "--method", method, "--device", "cpu",
            *extra]  # fmt: skip


def _outputs(out) -> dict[str, bytes]:
    """Every result file's bytes (the per-movie JSON holds timings, so it is compared apart)."""
    names = [p for p in sorted(out.iterdir()) if p.suffix in (".mrc", ".star")]
    return {p.name: p.read_bytes() for p in names}


def _checksums(out) -> dict[str, dict[str, str]]:
    data = mf.read_manifest(out)["movies"]
    return {s: e["outputs"] for s, e in data.items() if e["state"] == "done"}


@pytest.fixture(scope="module")
def reference(movies, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    assert run_cli_quiet(*_args(movies, out)) == 0
    return out


def test_one_corrupt_movie_in_six_is_recorded_and_the_rest_are_done(
    movies, tmp_path, monkeypatch, capsys
):
    bad = tmp_path / "m_bad.mrc"
    bad.write_bytes(movies[0].read_bytes()[:2000])  # truncated
    inputs = [*movies[:5], bad]
    before = {p: p.read_bytes() for p in inputs}
    out = tmp_path / "out"
    status, _, err = run_cli(monkeypatch, capsys, *_args(inputs, out, "bilinear"))
    assert status == EXIT_PARTIAL == 3, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cryozssr: error: 6 movies: 5 done, 1 failed (")
    assert "m_bad.mrc: truncated MRC file" in last
    # not a terminal (a cluster log): one plain line per movie, with the rate and the ETA
    assert "[1/6] m0: done in" in err and "movies/h, ETA" in err
    (log,) = (out / "logs").glob("run-*.log")
    assert "6 movies: 5 done, 1 failed" in log.read_text()
    data = mf.read_manifest(out)["movies"]
    assert sorted(s for s, e in data.items() if e["state"] == "done") == [f"m{i}" for i in range(5)]
    assert data["m_bad"]["state"] == "failed" and "truncated" in data["m_bad"]["reason"]
    assert not list(out.glob("m_bad*"))  # nothing that looks like an output of the bad movie
    star = starfile.read(out / "micrographs_sr.star")
    assert list(star["micrographs"]["rlnMicrographName"]) == [f"m{i}_sr.mrc" for i in range(5)]
    assert all(p.read_bytes() == b for p, b in before.items())  # inputs untouched
    # rerun: the done movies are verified and kept, the bad one is tried again and fails again
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*_sr.mrc")}
    status, _, err = run_cli(monkeypatch, capsys, *_args(inputs, out, "bilinear"))
    assert status == 3
    assert "5 done (5 already), 1 failed" in err
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*_sr.mrc")}


def test_all_failed_is_status_2_and_a_numeric_failure_is_recorded(
    movies, tmp_path, monkeypatch, capsys
):
    from cryozssr.pipeline import methods

    def nan_method(x, cfg, on_progress):
        return torch.full((2 * x.average.shape[0], 2 * x.average.shape[1]), float("nan")), {}

    monkeypatch.setitem(methods.METHOD_FUNCTIONS, "bilinear", nan_method)
    out = tmp_path / "out"
    status, _, err = run_cli(monkeypatch, capsys, *_args(movies[:2], out, "bilinear"))
    assert status == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("cryozssr: error: 2 movies: 0 done, 2 failed")
    reasons = [e["reason"] for e in mf.read_manifest(out)["movies"].values()]
    assert all("bilinear output is not finite" in r for r in reasons)
    assert not list(out.glob("*_sr.mrc")) and not (out / "micrographs_sr.star").exists()


def test_done_outputs_are_verified_and_another_config_is_refused(
    movies, reference, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    args = _args(movies[:2], out)
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    (out / "m0_sr.mrc").write_bytes(b"damaged")
    (out / "m1_avg.mrc").unlink()
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 0 and "changed since it was written" in err and "is missing" in err
    for name in ("m0_sr.mrc", "m1_avg.mrc"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    # a same-size change with the old time is only seen by re-hashing (--verify)
    sr = out / "m1_sr.mrc"
    st = sr.stat()
    sr.write_bytes(bytes(st.st_size))
    os.utime(sr, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run_cli(monkeypatch, capsys, *args)[0] == 0 and sr.read_bytes() == bytes(st.st_size)
    status, _, err = run_cli(monkeypatch, capsys, *args, "--verify")
    assert status == 0 and "m1_sr.mrc has changed" in err
    assert sr.read_bytes() == (reference / "m1_sr.mrc").read_bytes()
    # the case: misr results, then bilinear into the same folder
    status, _, err = run_cli(monkeypatch, capsys, *_args(movies[:2], out, "bilinear"))
    assert status == 2 and err.count("\n") == 1
    assert (
        "holds results of another configuration (" in err and "method: 'misr' -> 'bilinear'" in err
    )
    assert (out / "m0_sr.mrc").read_bytes() == (reference / "m0_sr.mrc").read_bytes()
    status, _, err = run_cli(monkeypatch, capsys, *_args(movies[:2], out, "bilinear", "--redo"))
    assert status == 0, err
    record = json.loads((out / "m0.json").read_text())
    assert record["method"] == "bilinear" and record["torch_threads"] == torch.get_num_threads()
    assert (out / "m0_sr.mrc").read_bytes() != (reference / "m0_sr.mrc").read_bytes()


def test_kill_9_at_five_random_points_then_resume_gives_the_same_bytes(movies, reference, tmp_path):
    out = tmp_path / "out"
    args = _args(movies, out)
    # each kill lands at a random point of a running batch on a fast or a loaded machine: after
    # 0 or 1 more movie is recorded done (watched in the manifest), plus a random fraction of the
    # time one movie takes here (timed first)
    started = time.perf_counter()
    assert wait_status(fork_cli(*_args(movies, tmp_path / "timed"))) == 0
    movie_seconds = (time.perf_counter() - started) / N_MOVIES
    rng = random.Random(15)
    finished_at: dict[str, int] = {}  # stem -> st_ino of its SR once the manifest said done
    kills = 0

    def done() -> int:
        return len(_checksums(out)) if (out / mf.MANIFEST_NAME).exists() else 0

    for _ in range(5):
        target = done() + (rng.randrange(2) if N_MOVIES - done() > 2 else 0)
        pid = fork_cli(*args)
        deadline = time.perf_counter() + 60
        while done() < target and time.perf_counter() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.8) * movie_seconds)
        os.kill(pid, signal.SIGKILL)
        kills += wait_status(pid) == -signal.SIGKILL
        if (out / mf.MANIFEST_NAME).exists():
            for stem in _checksums(out):
                ino = (out / f"{stem}_sr.mrc").stat().st_ino
                assert finished_at.setdefault(stem, ino) == ino  # never redone
    assert kills >= 3  # most kills hit a running batch (the rest found it finished)
    assert wait_status(fork_cli(*args)) == 0
    for stem, ino in finished_at.items():
        assert (out / f"{stem}_sr.mrc").stat().st_ino == ino
    assert _outputs(out) == _outputs(reference)
    assert _checksums(out).keys() == _checksums(reference).keys()
    assert not list(out.glob(".*.tmp"))


def test_two_processes_share_a_folder_and_do_each_movie_once(movies, reference, tmp_path):
    out = tmp_path / "out"
    pids = [fork_cli(*_args(movies, out)) for _ in range(2)]
    assert [wait_status(p) for p in pids] == [0, 0]
    assert _outputs(out) == _outputs(reference)
    logs = [p.read_text() for p in (out / "logs").glob("*.log")]
    done_lines = [ln for text in logs for ln in text.splitlines() if ": done in " in ln]
    assert len(done_lines) == N_MOVIES  # each movie processed by exactly one of the two


def test_a_live_claim_is_respected_and_a_dead_ones_taken_over(movies, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - a process holding the claim on m0 until killed
        with mf.claim(out, "m0"):
            os.write(write, b"x")
            time.sleep(60)
        os._exit(0)
    os.read(read, 1)
    status = wait_status(fork_cli(*_args(movies[:2], out, "bilinear")))
    assert status == 0
    data = mf.read_manifest(out)["movies"]
    assert set(data) == {"m1"}  # m0 left to its holder
    os.kill(pid, signal.SIGKILL)
    wait_status(pid)
    assert wait_status(fork_cli(*_args(movies[:2], out, "bilinear"))) == 0
    assert set(_checksums(out)) == {"m0", "m1"}


def test_the_star_is_rewritten_after_each_movie(movies, tmp_path, monkeypatch, capsys):
    from cryozssr.pipeline import star

    seen = []
    original = star.write_star_files

    def spy(out_dir, manifest):
        path = original(out_dir, manifest)
        seen.append(len(starfile.read(path)["micrographs"]))
        return path

    monkeypatch.setattr(star, "write_star_files", spy)
    out = tmp_path / "out"
    assert run_cli(monkeypatch, capsys, *_args(movies[:3], out, "bilinear"))[0] == 0
    assert seen == [1, 2, 3]
    assert np.isfinite(
        starfile.read(out / "micrographs_sr.star")["micrographs"]["rlnAccumMotionTotal"]
    ).all()


def test_the_journal_skips_a_record_cut_short_and_reads_incrementally(tmp_path):
    def record(stem):
        return lambda data: data["movies"].__setitem__(stem, {"state": "failed", "reason": stem})

    mf.update_manifest(tmp_path, record("a"))
    with open(tmp_path / mf.MANIFEST_NAME, "ab") as f:
        f.write(b'\n{"movie":"b","entry":{"sta')  # a process killed mid-append
    assert set(mf.read_manifest(tmp_path)["movies"]) == {"a"}
    mf.update_manifest(tmp_path, record("c"))
    assert set(mf.read_manifest(tmp_path)["movies"]) == {"a", "c"}
    mf._CACHE.clear()  # another process, reading from the start
    assert mf.read_manifest(tmp_path)["movies"]["c"] == {"state": "failed", "reason": "c"}


def test_fail_fast_stops_at_the_first_failure(movies, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "a_bad.mrc"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    status, _, err = run_cli(
        monkeypatch, capsys, *_args([bad, *movies[:2]], out, "bilinear", "--fail-fast")
    )
    assert status == 2
    assert err.strip().splitlines()[-1].startswith("cryozssr: error: 3 movies: 0 done, 1 failed")
    assert "2 not started" in err and not list(out.glob("*_sr.mrc"))


def test_bad_batch_options_are_one_clean_line(movies, tmp_path, monkeypatch, capsys):
    from _cli import assert_one_clean_error

    for extra, fragment in (
        (["--workers", "0"], "--workers 0"),
        (["--threads", "0"], "--threads 0"),
    ):
        status, _, err = run_cli(
            monkeypatch, capsys, *_args(movies[:1], tmp_path / "o", "bilinear", *extra)
        )
        assert_one_clean_error(status, err, fragment)


def test_the_next_movies_file_is_read_while_a_movie_runs(movies, tmp_path, monkeypatch, capsys):
    """In-process batches read movie i+1's file in the background while movie i is processed
    (``io/prefetch.py``): when a movie starts, the next one's file was asked for, and every byte of
    it has been read by the time that movie starts (the real run reads it from the page cache)."""
    from cryozssr.pipeline import runner

    asked: list = []
    seen_when_started: list = []
    run_job = runner.run_movie_job

    def prefetch(path):
        asked.append(prefetch_file(path))
        return asked[-1]

    def job_recording_prefetches(job, on_progress=None):
        for ahead in asked:
            if ahead.path == job.path:  # this movie's file was read ahead
                assert ahead.wait(timeout=30)
                seen_when_started.append(ahead.bytes_read == job.path.stat().st_size)
        return run_job(job, on_progress)

    monkeypatch.setattr(runner, "prefetch_file", prefetch)
    monkeypatch.setattr(runner, "run_movie_job", job_recording_prefetches)
    status, _, _ = run_cli(monkeypatch, capsys, *_args(movies[:3], tmp_path / "out", "bilinear"))
    assert status == 0
    assert [p.path for p in asked] == list(movies[1:3])
    assert seen_when_started == [True, True]


def test_a_prefetch_of_a_missing_file_is_silent(tmp_path):
    """The movie's own read reports a bad file; the background read only stops."""
    ahead = prefetch_file(tmp_path / "gone.tif")
    assert ahead.wait(timeout=10)
    assert ahead.bytes_read == 0 and "gone.tif" in (ahead.error or "")
