"""``cryozssr run``'s options -> :class:`~cryozssr.pipeline.config.RunConfig` (or ``--config``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cryozssr.errors import InputError, OptionError
from cryozssr.pipeline.config import RunConfig, with_options

KEEP_WITH_CONFIG = {
    *("inputs", "out", "config", "device", "skip_existing", "shard", "keep_going", "redo"),
    *("verify", "fail_fast", "workers", "dask", "gpus_per_task", "threads", "watch"),
    *("stable_seconds", "poll_seconds", "idle_seconds", "stop_file"),
}
"""Options that may be given next to ``--config`` (which inputs, where to, how to batch, device)."""


def read_run_config(path: Path) -> RunConfig:
    """The :class:`RunConfig` in ``path``: a run's ``<stem>.json`` record or a bare config object."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"--config {path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise InputError(f"--config {path}: not JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # a run record
    try:
        return RunConfig.from_dict(data)
    except (OptionError, TypeError) as exc:
        raise OptionError(f"--config {path}: {exc}") from None


def _given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was given (on the command line or from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _option_pairs(options: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--option {item!r}: expected NAME=VALUE")
        pairs[key.strip().replace("-", "_")] = value.strip()
    return pairs


def parse_patches(value: str) -> tuple[int, int] | str | None:
    """``--patches``: ``auto``, ``off`` (global motion only) or a grid size ``N`` (N x N)."""
    text = value.strip().lower()
    if text in ("auto", "off"):
        return None if text == "off" else "auto"
    try:
        n = int(text)
    except ValueError:
        raise OptionError(f"--patches {value}: expected auto, off or a grid size N") from None
    return (n, n)  # RunConfig checks n >= 1


def build_run_config(ctx: click.Context, **p: Any) -> RunConfig:
    """The run's config from ``--config`` or from the options ``p`` (named as ``run``'s parameters)."""
    if p["config"] is not None:
        given = sorted(
            "--" + name.replace("_", "-")
            for name in p
            if name not in KEEP_WITH_CONFIG and _given(ctx, name)
        )
        if given:
            raise OptionError(f"--config sets every run option: drop {', '.join(given)}")
        cfg = read_run_config(p["config"])
        if _given(ctx, "device"):
            cfg = RunConfig.from_dict({**cfg.to_dict(), "device": p["device"]})
        return cfg
    method = p["method"]
    if p["regime"] == "explicit":
        raise OptionError("--regime explicit is now its own method: use --method mmse")
    if method != "zssr" and (p["preset"] or p["regime"] or p["max_iterations"]):
        raise OptionError("--preset, --regime and --max-iterations apply to --method zssr only")
    options = _option_pairs(p["option"] or [])
    if method == "zssr":
        from cryozssr.zssr import config_from_preset

        zssr = {"regime": p["regime"], "max_iterations": p["max_iterations"]}
        method_config = config_from_preset(
            p["preset"] or "fast", **{k: v for k, v in zssr.items() if v is not None}
        )
    else:
        method_config = RunConfig(method=method).method_config  # (an unknown method fails here)
    if options:
        if method_config is None:
            raise OptionError(f"--method {method} has no --option to set")
        method_config = with_options(method_config, options)
    return RunConfig(
        method=method,
        method_config=method_config,
        device=p["device"],
        seed=p["seed"],
        pixel_size_angstrom=p["pixel_size"],
        dose_per_frame_e_per_a2=p["dose_per_frame"],
        voltage_kv=p["voltage"],
        spherical_aberration_mm=p["cs"],
        amplitude_contrast=p["amp_contrast"],
        gain_path=str(p["gain"]) if p["gain"] else None,
        gain_rot=p["gain_rot"],
        gain_flip=p["gain_flip"],
        mtf_path=str(p["mtf"]) if p.get("mtf") else None,
        eer_fractions=p["eer_fractions"],
        motion_patches=parse_patches(p["patches"]),
        motion_refine=p["motion_refine"],
        half_sets=p["half_sets"],
        score_folds=p.get("score_folds"),
        zssr_checkpoint=str(p["zssr_checkpoint"]) if p.get("zssr_checkpoint") else None,
    )
