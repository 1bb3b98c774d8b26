"""``cryozssr demo``: the whole pipeline on a small simulated apoferritin data set."""

from __future__ import annotations

from pathlib import Path

import typer

from cryozssr.cli._common import command_line, console, err_console, progress
from cryozssr.pipeline.config import DEMO_METHODS


def demo(
    out: Path = typer.Option(Path("cryozssr_demo"), "--out", "-o", help="Output folder."),
    n_movies: int = typer.Option(2, "--n-movies", help="Simulated movies."),
    size_hr: int = typer.Option(
        512, "--size-hr", help="HR frame size in pixels (1.5 A/px; LR is half)."
    ),
    frames: int = typer.Option(40, "--frames", help="Frames per movie."),
    particles: int = typer.Option(25, "--particles", help="Apoferritin particles per movie."),
    methods: str = typer.Option(
        ",".join(DEMO_METHODS),
        "--methods",
        help="Comma-separated methods to compare; zssr/REGIME picks a regime.",
    ),
    preset: str = typer.Option("fast", "--preset", help="zssr preset: fast or paper."),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", help="Cap zssr training iterations."
    ),
    no_3d: bool = typer.Option(False, "--no-3d", help="Skip the oracle-pose 3D reconstructions."),
    no_score: bool = typer.Option(
        False,
        "--no-score",
        help="Skip the half-set runs behind the no-truth alias score (they about double the time).",
    ),
    score_folds: int = typer.Option(
        2,
        "--score-folds",
        help="Folds of the alias score: 2 (the half sets, no extra runs); K > 2 runs every"
        " method K more times on (K-1)/K of the frames (zssr trained K more times per movie).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Simulate apoferritin movies, super-resolve them with every method, evaluate, write a report.

    The defaults take about 5 minutes on an idle 2-core CPU (4.8 min measured, with the half-set
    runs and scores; --no-score skips them). Example: cryozssr demo --out demo/
    """
    from cryozssr.cli.evaluate import print_summary
    from cryozssr.pipeline.demo import DemoConfig, run_demo

    config = DemoConfig(
        out_dir=out,
        n_movies=n_movies,
        size_hr=size_hr,
        frames=frames,
        particles=particles,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        zssr_preset=preset,
        zssr_max_iterations=max_iterations,
        reconstruct_3d=not no_3d,
        score=not no_score,
        score_folds=score_folds,
        device=device,
        seed=seed,
    )
    with progress() as bar:
        stage = bar.add_task("", total=None, visible=False)

        def on_progress(description: str, done: int, total: int) -> None:
            bar.update(
                stage, description=f"  {description}", completed=done, total=total, visible=True
            )

        def on_stage(message: str) -> None:
            bar.update(stage, visible=False)
            err_console.log(message)

        rows, report = run_demo(
            config, command=command_line(), on_stage=on_stage, on_progress=on_progress
        )
    print_summary(rows, title="cryozssr demo")
    console.print(f"report: {report}")
