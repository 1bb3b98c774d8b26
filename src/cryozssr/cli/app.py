"""Registers every ``cryozssr`` command in one place and turns user errors into one clean line."""

from __future__ import annotations

import logging
import sys

import typer

from cryozssr import __version__
from cryozssr.cli import bin as bin_cmd
from cryozssr.cli import demo, evaluate, info, relion_external, run, simulate
from cryozssr.cli._common import error_line
from cryozssr.errors import CryoZssrError

app = typer.Typer(
    name="cryozssr",
    help="Self-supervised 2x super-resolution of cryo-EM movies (Cryo-ZSSR) and its evaluation.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("info")(info.info)
app.command("bin")(bin_cmd.bin_movies)
app.command("simulate")(simulate.simulate)
app.command("run")(run.run)
app.command("evaluate")(evaluate.evaluate)
app.command("demo")(demo.demo)
app.command(
    "relion-external",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(relion_external.relion_external)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cryozssr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debugging detail to stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr."),
) -> None:
    """cryozssr: recover detail past the pixel Nyquist limit from the frames of a cryo-EM movie."""
    from cryozssr.cli._common import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main() -> None:
    """Console-script entry point: user errors give one line on stderr and exit status 2."""
    try:
        app()
    except CryoZssrError as exc:
        sys.stderr.write(error_line(exc) + "\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("cryozssr: interrupted\n")
        sys.exit(130)
