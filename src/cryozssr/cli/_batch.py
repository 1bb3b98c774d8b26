"""What ``run`` and ``relion-external`` share: option checks, the watch loop, the final summary."""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import err_console
from cryozssr.errors import CryoZssrError


def watch_session(inputs, cfg, out, watch_cfg, options, cmd) -> None:
    from cryozssr.cli._batch_progress import BatchProgress, log_file
    from cryozssr.pipeline.batch import prepare_out_dir
    from cryozssr.pipeline.watch import watch_batch

    prepare_out_dir(out)
    with log_file(out, cmd), BatchProgress(0, 0, label=f"{cfg.method}: watching") as bar:

        def on_outcome(outcome, summary) -> None:
            bar.set_total(summary.total)
            bar.outcome(outcome.stem, outcome.state, outcome.reason, outcome.seconds)
            if outcome.state == "failed":
                stderr_line(f"cryozssr: failed: {outcome.reason}")

        summary = watch_batch(
            inputs,
            cfg,
            out,
            watch=watch_cfg,
            options=options,
            command_line=cmd,
            on_outcome=on_outcome,
            on_progress=bar.stage,
        )
        finish(summary)


def check_zssr_checkpoint(cfg) -> None:
    """Refuse an incompatible ``--zssr-checkpoint`` before any movie is read."""
    checkpoint = cfg.zssr_checkpoint
    if checkpoint is not None and Path(checkpoint).exists():
        from cryozssr.io.checkpoint import load_checkpoint

        load_checkpoint(checkpoint, config=cfg.method_config)


def stderr_line(text: str) -> None:
    """One unwrapped line on stderr (rich would fold it at 80 columns in a log)."""
    import sys

    err_console.file.flush()
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def finish(summary) -> None:
    """Print the summary line and leave with the batch's exit status (see the module docstring)."""
    from cryozssr.cli._batch_progress import file_only, log
    from cryozssr.pipeline.runner import EXIT_FAILED, EXIT_OK

    status = summary.exit_status
    (log if status == EXIT_OK else file_only).info("%s", summary.line())
    if status == EXIT_FAILED:
        failed = summary.failed
        raise CryoZssrError(failed[0].reason if summary.total == 1 else summary.line())
    if status != EXIT_OK:
        stderr_line(f"cryozssr: error: {summary.line()}")
        raise typer.Exit(status)
