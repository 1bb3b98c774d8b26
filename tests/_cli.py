"""Helpers for tests that drive the console entry point in-process."""

from __future__ import annotations

import sys

import pytest

from cryozssr.cli.app import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``cryozssr ARGS`` through :func:`main`; return (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["cryozssr", *args])
    status = 0
    try:
        main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_clean_error(status: int, err: str, *fragments: str) -> None:
    """Exit status 2 and exactly one ``cryozssr: error:`` line naming each fragment, no traceback."""
    lines = err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1, err
    assert lines[0].startswith("cryozssr: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


__all__ = ["assert_one_clean_error", "fork_cli", "pytest", "run_cli", "wait_status"]


def fork_cli(*args: str) -> int:
    """Run ``cryozssr ARGS`` in a forked child (torch already imported: no start-up cost); its pid.

    The child leaves with the command's exit status through ``os._exit`` (no pytest teardown).
    """
    import os

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            sys.argv = ["cryozssr", *args]
            try:
                main()
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
        finally:
            os._exit(status)
    return pid


def wait_status(pid: int) -> int:
    import os

    _, raw = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(raw)


def run_cli_quiet(*args: str) -> int:
    """:func:`run_cli` outside a test function (module fixtures): the exit status only."""
    mp = pytest.MonkeyPatch()

    class _Discard:
        @staticmethod
        def readouterr():
            return type("Captured", (), {"out": "", "err": ""})()

    try:
        return run_cli(mp, _Discard, *args)[0]
    finally:
        mp.undo()
