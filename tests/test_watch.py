"""``--watch``: movies copied in slowly are each taken once, only when complete."""

from __future__ import annotations

import threading
import time

import starfile

from _cli import run_cli
from _synthetic import write_movies
from cryozssr.pipeline import manifest as mf
from cryozssr.pipeline import watch as watch_module
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.runner import run_batch
from cryozssr.pipeline.watch import WatchConfig, watch_batch

N = 3
CHUNKS, PAUSE = 4, 0.15  # the writer pauses 0.15 s between chunks; the watch waits 1 s


def _sources(folder):
    return write_movies(folder, N, prefix="w", seed=50)


def _slow_copy(sources, dest, finished: dict):
    for src in sources:
        data = src.read_bytes()
        step = len(data) // CHUNKS + 1
        with open(dest / src.name, "wb") as f:
            for k in range(0, len(data), step):
                f.write(data[k : k + step])
                f.flush()
                time.sleep(PAUSE)
        finished[src.name] = len(data)
        time.sleep(0.3)


def test_watch_takes_each_movie_once_and_never_half_written(tmp_path, monkeypatch):
    sources = _sources(tmp_path)
    cfg = RunConfig(method="bilinear", device="cpu", dose_per_frame_e_per_a2=1.5)
    reference = tmp_path / "reference"
    assert run_batch(sources, cfg, reference).exit_status == 0
    incoming = tmp_path / "session"
    incoming.mkdir()
    (incoming / "notes.txt").write_text("not a movie")
    taken_sizes: list[tuple[str, int]] = []
    real = watch_module.run_batch

    def spy(movies, *args, **kwargs):
        taken_sizes.extend((p.name, p.stat().st_size) for p in movies)
        return real(movies, *args, **kwargs)

    monkeypatch.setattr(watch_module, "run_batch", spy)
    finished: dict[str, int] = {}
    writer = threading.Thread(target=_slow_copy, args=(sources, incoming, finished))
    writer.start()
    out = tmp_path / "out"
    summary = watch_batch(
        [str(incoming)],
        cfg,
        out,
        watch=WatchConfig(stable_seconds=1.0, poll_seconds=0.05, idle_seconds=2.0),
    )
    writer.join()
    assert summary.count("done") == N and not summary.failed
    assert sorted(name for name, _ in taken_sizes) == [f"w{i}.mrc" for i in range(N)]  # once each
    assert all(size == finished[name] for name, size in taken_sizes)  # only complete files
    for i in range(N):
        name = f"w{i}_sr.mrc"
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    assert len(starfile.read(out / "micrographs_sr.star")["micrographs"]) == N


def test_watch_stops_on_the_stop_file_and_resumes(tmp_path, monkeypatch, capsys):
    sources = _sources(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "STOP").touch()
    args = ["run", "--watch", str(tmp_path / "w*.mrc"), "--out", str(out), "--method",
            "bilinear", "--device", "cpu", "--stable-seconds", "0", "--poll-seconds", "0.05",
            "--idle-seconds", "0.5", "--dose-per-frame", "1.5"]  # fmt: skip
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 0 and not mf.read_manifest(out)["movies"]  # stopped before any movie
    (out / "STOP").unlink()
    status, _, err = run_cli(monkeypatch, capsys, *args)  # stops after 0.5 s idle
    assert status == 0, err
    assert sorted(mf.read_manifest(out)["movies"]) == [p.stem for p in sources]
    status, _, err = run_cli(monkeypatch, capsys, *args)  # a restarted watch redoes nothing
    assert status == 0 and f"{N} movies: {N} done ({N} already)" in err
