"""``cryozssr evaluate``: compare super-resolution runs with cryo-EM's own yardsticks.

Example::

    cryozssr evaluate runs/zssr runs/bilinear --truth sim/ --out eval/

Each RUN_DIR is the output folder of one ``cryozssr run`` (one method). Writes ``report.html``,
``evaluation.json`` and ``plots/`` into ``--out`` and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import command_line, console, err_console


def evaluate(
    run_dirs: list[Path] = typer.Argument(
        ..., help="Output folders of `cryozssr run`, one per method."
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        help="Simulation folder (`cryozssr simulate`): enables FRC vs truth, HR and 3D.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: FIRST_RUN_DIR/evaluation)."
    ),
    no_3d: bool = typer.Option(False, "--no-3d", help="Skip the oracle-pose 3D reconstructions."),
    symmetry: str | None = typer.Option(
        None,
        "--symmetry",
        help="Point group imposed in 3D: C1, Cn, Dn, T or O (default: the simulation's).",
    ),
    tile: int = typer.Option(512, "--tile", help="Tile size (px) of the CTF-fit power spectrum."),
) -> None:
    """Evaluate super-resolved micrographs: FRC, CTFFIND4-style CTF fit, oracle-pose 3D FSC.

    Example: cryozssr evaluate runs/zssr runs/bilinear --truth sim/ --out eval/
    """
    from cryozssr import __version__
    from cryozssr.errors import OptionError
    from cryozssr.evaluate.collect import read_run_dir, read_sim_dir
    from cryozssr.evaluate.compare import EvaluateConfig, evaluate_runs
    from cryozssr.evaluate.ctf_fit import CtfFitConfig
    from cryozssr.evaluate.reconstruct import symmetry_matrices
    from cryozssr.evaluate.report import write_report

    if symmetry is not None:
        try:
            symmetry_matrices(symmetry)
        except OptionError as exc:
            raise OptionError(f"--symmetry: {exc}") from None
    if tile < 64:
        raise OptionError("--tile must be at least 64 px")
    runs = [read_run_dir(p) for p in run_dirs]
    sim = read_sim_dir(truth) if truth is not None else None
    config = EvaluateConfig(do_3d=not no_3d, symmetry=symmetry, ctf=CtfFitConfig(tile_px=tile))
    rows = evaluate_runs(runs, sim, config=config, on_progress=lambda m: err_console.log(m))
    out_dir = out or (run_dirs[0] / "evaluation")
    meta = {
        "cryozssr_version": __version__,
        "command_line": command_line(),
        "run_dirs": [str(p) for p in run_dirs],
        "truth": str(truth) if truth else None,
        "config": {"do_3d": config.do_3d, "symmetry": symmetry, "ctf_tile_px": tile},
    }
    report = write_report(rows, out_dir, meta=meta, lr_pixel_angstrom=rows[0].pixel_size_angstrom)
    print_summary(rows, title="cryozssr evaluation")
    err_console.print(f"report: {report}")


def print_summary(rows, *, title: str) -> None:
    """The 80-column table, then the score's method-against-method line (where it has one)."""
    from cryozssr.evaluate.pairs import method_pairs, terminal_line

    console.print(render_table(rows, title=title))
    line = terminal_line(method_pairs(rows))
    if line is not None:
        console.print(line, markup=False, highlight=False)


def render_table(rows, *, title: str):
    """The 80-column summary: verdict past the Nyquist, alias score, truth, CTF fit, time."""
    from rich.table import Table

    from cryozssr.evaluate.summary import terminal_rows

    head, cells = terminal_rows(rows)
    table = Table(
        title=title,
        caption="past Nyquist: recovered detail, % of what the frames allow (no truth; unsure:"
        " some evidence, short of z 4);"
        " score: ρ, or where ρ is not measurable the z beyond interpolation pooled over the movies"
        " (≥ 4: recovered); truth:"
        " FRC past the Nyquist; full table in the report",
        caption_justify="left",
    )
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in cells:
        table.add_row(*row)
    return table
