"""INPUT expansion: files, globs, folders and RELION movie STAR files."""

from __future__ import annotations

import pandas as pd
import pytest

from cryozssr.errors import InputError
from cryozssr.io import expand_movie_inputs, write_star


@pytest.fixture
def movies(tmp_path):
    folder = tmp_path / "movies"
    folder.mkdir()
    for name in ("b.tiff", "a.mrc", "c.eer", "gain.gain", "notes.txt"):
        (folder / name).write_bytes(b"")
    return folder


def test_folder_gives_movies_only_sorted(movies):
    assert [p.name for p in expand_movie_inputs([str(movies)])] == ["a.mrc", "b.tiff", "c.eer"]


def test_glob_and_files_keep_order_and_drop_repeats(movies):
    found = expand_movie_inputs(
        [str(movies / "c.eer"), str(movies / "*.tiff"), str(movies / "c.eer")]
    )
    assert found == [movies / "c.eer", movies / "b.tiff"]


def test_relion_star_paths_are_relative_to_the_star_folder(tmp_path, movies):
    star = tmp_path / "movies.star"
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnMicrographOriginalPixelSize": [0.83]})
    names = pd.DataFrame(
        {"rlnMicrographMovieName": ["movies/a.mrc", "movies/b.tiff"], "rlnOpticsGroup": [1, 1]}
    )
    write_star(star, {"optics": optics, "movies": names})
    assert expand_movie_inputs([str(star)]) == [
        tmp_path / "movies/a.mrc",
        tmp_path / "movies/b.tiff",
    ]


def test_missing_star_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand_movie_inputs([str(tmp_path / "movies.star")])


def test_star_without_movie_column(tmp_path):
    write_star(tmp_path / "x.star", {"particles": pd.DataFrame({"rlnImageName": ["1@a.mrcs"]})})
    with pytest.raises(InputError, match="no rlnMicrographMovieName column"):
        expand_movie_inputs([str(tmp_path / "x.star")])


def test_nothing_found(tmp_path, movies):
    with pytest.raises(InputError, match="pattern matches no files"):
        expand_movie_inputs([str(movies / "*.mrcs")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="folder holds no movies"):
        expand_movie_inputs([str(empty)])
    with pytest.raises(InputError, match="no input movies"):
        expand_movie_inputs([])


def test_duplicate_stems_would_collide(movies, tmp_path):
    (tmp_path / "a.tiff").write_bytes(b"")
    with pytest.raises(InputError, match="two inputs share the name 'a'"):
        expand_movie_inputs([str(movies), str(tmp_path / "a.tiff")])
