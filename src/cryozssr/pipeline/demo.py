"""The demo: simulate apoferritin movies, super-resolve them with every method, evaluate.

Everything runs through the same library calls as ``cryozssr simulate``, ``run`` and ``evaluate``,
with the same inputs for every method: nothing is given the ground truth except the evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cryozssr.errors import OptionError, ProcessingError
from cryozssr.pipeline.config import DEMO_METHODS, METHODS, RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo data set and the methods to compare.

    A method may name a zssr regime, e.g. ``zssr/workshop``; plain ``zssr`` is the default regime
    (``journal``).
    """

    out_dir: Path = Path("cryozssr_demo")
    n_movies: int = 2
    size_hr: int = 512
    frames: int = 40
    particles: int = 25
    detector: str = "k3"
    noise_model: str = "counting"  # the detector's counting statistics; "poisson": ideal counter
    methods: tuple[str, ...] = DEMO_METHODS
    zssr_preset: str = "fast"
    zssr_max_iterations: int | None = None
    reconstruct_3d: bool = True
    score: bool = True  # half-set runs and the no-truth alias score (about doubles the run time)
    score_folds: int = 2  # the alias score's folds: 2 = the half sets (no extra method runs)
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m.split("/")[0] not in METHODS]
        if unknown:
            raise OptionError(
                f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}"
            )
        if not self.methods:
            raise OptionError("--methods: give at least one method")
        if self.n_movies < 1 or self.frames < 4 or self.particles < 1:
            raise OptionError("--n-movies, --frames and --particles must be >= 1, 4 and 1")
        if self.score:
            from cryozssr.evaluate.score import MIN_FRAMES, check_folds

            try:  # under 10 frames the runs record "not scored", as without the option
                check_folds(self.score_folds, self.frames if self.frames >= MIN_FRAMES else None)
            except ValueError as exc:
                raise OptionError(f"--score-folds: {exc}") from None


Stage = Callable[[str], None]


def _zssr_config(config: DemoConfig, regime: str):
    from cryozssr.zssr import config_from_preset

    overrides = {"regime": regime or None, "max_iterations": config.zssr_max_iterations}
    return config_from_preset(
        config.zssr_preset, **{k: v for k, v in overrides.items() if v is not None}
    )


def run_demo(
    config: DemoConfig,
    *,
    command: str = "",
    on_stage: Stage = lambda message: None,
    on_progress: Callable[[str, int, int], None] | None = None,
):
    """Run the demo; returns ``(rows, report_path)`` as :func:`cryozssr.evaluate` gives them."""
    from cryozssr.device import resolve_device
    from cryozssr.pipeline.batch import prepare_out_dir
    from cryozssr.pipeline.runner import BatchOptions, run_batch
    from cryozssr.simulate import SimulationConfig
    from cryozssr.simulate.dataset import simulate_dataset

    out = config.out_dir
    prepare_out_dir(out)
    device = resolve_device(config.device)
    sim_dir = out / "sim"
    sim_config = SimulationConfig(
        n_movies=config.n_movies,
        size_hr=config.size_hr,
        frames=config.frames,
        particles=config.particles,
        detector=config.detector,
        noise_model=config.noise_model,
    ).validate()
    on_stage(
        f"simulating {config.n_movies} apoferritin movie(s): {config.size_hr} px HR "
        f"({sim_config.pixel_size_hr_angstrom} A/px), {config.frames} frames"
    )
    simulate_dataset(sim_dir, sim_config, seed=config.seed, command=command)
    movies = sorted((sim_dir / "movies_lr").glob("*.mrc"))

    run_dirs = []
    for entry in config.methods:
        method, _, regime = entry.partition("/")
        run_dir = out / "runs" / entry.replace("/", "-")
        prepare_out_dir(run_dir)
        cfg = RunConfig(
            method=method,
            method_config=_zssr_config(config, regime) if method == "zssr" else None,
            device=config.device,
            seed=config.seed,
            half_sets=config.score,
            score_folds=config.score_folds if config.score and config.frames >= 10 else None,
            dose_per_frame_e_per_a2=sim_config.dose_per_frame_e_per_a2,
            voltage_kv=sim_config.voltage_kv,
            spherical_aberration_mm=sim_config.spherical_aberration_mm,
            amplitude_contrast=sim_config.amplitude_contrast,
        )
        on_stage(f"{entry}: {len(movies)} movie(s)")
        summary = run_batch(
            movies,
            cfg,
            run_dir,
            options=BatchOptions(redo=True),  # the demo folder is rewritten on every call
            command_line=command,
            on_outcome=lambda o, _s, entry=entry: on_stage(f"{entry}: {o.stem} {o.state}"),
            on_progress=on_progress,
        )
        if summary.failed:
            raise ProcessingError(f"demo, {entry}: {summary.line()}")
        run_dirs.append(run_dir)

    return evaluate_demo(config, run_dirs, command=command, on_stage=on_stage, device=str(device))


def evaluate_demo(
    config: DemoConfig,
    run_dirs: list[Path],
    *,
    command: str = "",
    on_stage: Stage = lambda message: None,
    device: str | None = None,
):
    """Evaluate the demo's ``run_dirs`` against the truth in ``config.out_dir / "sim"`` and write
    the report (``device``: the one the runs used, for its settings table); returns
    ``(rows, report_path)``. :func:`run_demo` ends with it; a benchmark whose
    slowest methods were stopped evaluates the finished ones with it."""
    from cryozssr.evaluate.collect import read_run_dir, read_sim_dir
    from cryozssr.evaluate.compare import EvaluateConfig, evaluate_runs
    from cryozssr.evaluate.report import write_report

    on_stage(
        "evaluating: FRC against the truth, CTF fits"
        + (", 3D reconstructions" if config.reconstruct_3d else "")
    )
    runs = [read_run_dir(p) for p in run_dirs]
    sim = read_sim_dir(config.out_dir / "sim")
    eval_config = EvaluateConfig(do_3d=config.reconstruct_3d)
    rows = evaluate_runs(runs, sim, config=eval_config, on_progress=on_stage)
    meta = {
        "command_line": command,
        "demo_config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "torch_threads": torch.get_num_threads(),
        "device": device or config.device,
    }
    report = write_report(
        rows, config.out_dir / "report", meta=meta, lr_pixel_angstrom=rows[0].pixel_size_angstrom
    )
    return rows, report
