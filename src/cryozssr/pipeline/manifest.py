"""The batch manifest: which movie of an output folder is done, failed or pending, and with what.

``<out>/cryozssr_manifest.jsonl`` is an append-only journal of JSON records, one per line::

    {"header": {"format": 1, "fingerprint": "<sha256 of the config>", "config": {...}}}
    {"movie": "<stem>", "entry": {"state": "done", "input": "...", "fingerprint": "...",
                                  "outputs": {"<name>": "<sha256>"}, "seconds": 12.3, ...}}
    {"movie": "<stem>", "entry": {"state": "failed", "input": "...", "reason": "<one line>"}}

The state is the last record of each kind: :func:`read_manifest` folds it into
``{"format", "fingerprint", "config", ..., "movies": {stem: entry}}``. Each record is appended,
under the folder lock, by a single ``write`` of ``"\n" + json``: a process killed mid-append (or a
full disk) leaves at worst one unparsable record, which readers skip. Appending keeps the cost of
recording a movie constant for a 20,000-movie session (rewriting a whole JSON file per movie
would not), and each process parses only the records added since it last looked.

A movie is *done* only when the manifest says so: its files are all written before its entry is,
so a run killed at any moment leaves at worst files that the manifest does not list (they are
rewritten by the next run). Processes share a folder safely through two kinds of POSIX
``lockf`` locks in ``<out>/.cryozssr/``: one folder lock held for each short read-modify-write of
the manifest (and the STAR files written with it), and one claim per movie held while it is being
processed. The kernel drops the locks of a process that dies, so a stale claim is taken over by
the next process that asks for it. (``lockf`` works on local disks and on NFS with a lock daemon.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryozssr.errors import OutputError

MANIFEST_NAME = "cryozssr_manifest.jsonl"
STAR_NAME = "micrographs_sr.star"  # written under the folder lock (pipeline.star)
STATE_DIR = ".cryozssr"
FORMAT = 1
#: RunConfig fields that do not change what is computed (``device``: float rounding only; the gain
#: enters through its checksum, not its path).
NOT_FINGERPRINTED = ("device", "gain_path")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint_config(config: dict[str, Any], *, gain_sha256: str | None) -> dict[str, Any]:
    """What decides a movie's outputs: the config minus :data:`NOT_FINGERPRINTED`, plus the gain."""
    fp = {k: v for k, v in sorted(config.items()) if k not in NOT_FINGERPRINTED}
    fp["gain_sha256"] = gain_sha256
    return fp


def fingerprint(material: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["method: 'misr' -> 'bilinear'", ...]`` for the fingerprinted fields that differ."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def manifest_path(out_dir: Path) -> Path:
    return out_dir / MANIFEST_NAME


def _state_dir(out_dir: Path) -> Path:
    d = out_dir / STATE_DIR
    try:
        (d / "claims").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {d}: {exc.strerror}") from None
    return d


def _empty() -> dict[str, Any]:
    return {"format": FORMAT, "fingerprint": None, "config": None, "movies": {}}


# per process: journal path -> (inode, bytes consumed, folded state)
_CACHE: dict[Path, tuple[int, int, dict[str, Any]]] = {}


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The folded manifest (empty when the folder has none yet); a fresh copy the caller may edit.

    Only records appended since this process last read the journal are parsed.
    """
    path = manifest_path(out_dir)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            cached_inode, offset, state = _CACHE.get(path, (None, 0, None))
            if cached_inode != st.st_ino or state is None or st.st_size < offset:
                offset, state = 0, _empty()
            f.seek(offset)
            tail = f.read()
    except FileNotFoundError:
        _CACHE.pop(path, None)
        return _empty()
    except OSError as exc:
        raise OutputError(f"{path}: unreadable manifest ({exc.strerror})") from None
    pieces = tail.split(b"\n")
    consumed = len(pieces[0])  # text before the first record separator (none in a sound file)
    for k, piece in enumerate(pieces[1:], start=1):
        last = k == len(pieces) - 1
        try:
            record = json.loads(piece)
        except ValueError:
            if last:  # perhaps being appended right now: read it next time
                break
            record = None  # a record cut short by a kill or a full disk
        if isinstance(record, dict):
            _fold(state, record, path)
        consumed += 1 + len(piece)
    _CACHE[path] = (st.st_ino, offset + consumed, state)
    return state | {"movies": dict(state["movies"])}


def _fold(state: dict[str, Any], record: dict[str, Any], path: Path) -> None:
    if "header" in record:
        header = record["header"]
        if header.get("format") != FORMAT:
            raise OutputError(f"{path}: not a cryozssr manifest of format {FORMAT}")
        state.update(header)
    elif "movie" in record:
        state["movies"][record["movie"]] = record["entry"]


def _append(out_dir: Path, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    text = "".join("\n" + json.dumps(r, separators=(",", ":"), allow_nan=False) for r in records)
    data = text.encode()
    try:
        fd = os.open(manifest_path(out_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot record in {manifest_path(out_dir)}: {exc.strerror}") from None
    if written != len(data):
        raise OutputError(f"cannot record in {manifest_path(out_dir)}: short write (disk full?)")


@contextlib.contextmanager
def _locked(path: Path, *, blocking: bool) -> Iterator[int | None]:
    """Hold an exclusive ``lockf`` lock on ``path``; yields the fd, or None if not blocking and busy.

    The lock file is never deleted, so every process locks the same inode.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                yield None
                return
            raise
        try:
            yield fd
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """The folder lock: one manifest read-modify-write at a time across processes."""
    with _locked(_state_dir(out_dir) / "manifest.lock", blocking=True):
        yield


@contextlib.contextmanager
def claim(out_dir: Path, stem: str) -> Iterator[bool]:
    """Try to claim movie ``stem``; yields True when this process holds it, False when another does.

    The claim is released when the block exits, or by the kernel if the process dies.
    """
    with _locked(_state_dir(out_dir) / "claims" / f"{stem}.lock", blocking=False) as fd:
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.uname().nodename} {os.getpid()}\n".encode())
        yield fd is not None


def update_manifest(
    out_dir: Path,
    change: Callable[[dict[str, Any]], None],
    *,
    after: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Read the manifest, let ``change`` edit it, and append what changed, under the folder lock.

    ``change`` replaces entries (``data["movies"][stem] = {...}``) or header values
    (``data["fingerprint"] = ...``); it must not edit an entry in place. ``after(manifest)`` runs
    under the same lock (the STAR files are rewritten there, so that they always list exactly the
    movies the manifest calls done). Returns the new manifest.
    """
    with folder_lock(out_dir):
        for leftover in out_dir.glob(f".{STAR_NAME}.*.tmp"):  # left by a writer killed here
            leftover.unlink(missing_ok=True)
        data = read_manifest(out_dir)
        before = data | {"movies": dict(data["movies"])}
        change(data)
        records: list[dict[str, Any]] = []
        header = {k: v for k, v in data.items() if k != "movies"}
        if header != {k: v for k, v in before.items() if k != "movies"}:
            records.append({"header": header})
        old = before["movies"]
        records += [
            {"movie": stem, "entry": entry}
            for stem, entry in data["movies"].items()
            if old.get(stem) is not entry
        ]
        _append(out_dir, records)
        data = read_manifest(out_dir)
        if after is not None:
            after(data)
    return data


def file_stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify_done(out_dir: Path, entry: dict[str, Any], *, rehash: bool = False) -> str | None:
    """None when every output of a done entry is as written, else what is wrong.

    Cheap by default: size and modification time as recorded (a resume of a 10,000-movie folder
    must not read a terabyte); ``rehash`` compares SHA-256 checksums (``--verify``).
    """
    stats = entry.get("stats", {})
    for name, digest in entry.get("outputs", {}).items():
        path = out_dir / name
        if not path.is_file():
            return f"{name} is missing"
        changed = sha256_file(path) != digest if rehash else file_stat(path) != stats.get(name)
        if changed:
            return f"{name} has changed since it was written"
    return None
