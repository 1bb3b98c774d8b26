"""Writing an evaluation: ``evaluation.json`` (every figure and curve), PNG plots, ``report.html``.

Plots are :class:`matplotlib.figure.Figure` objects drawn by the Agg renderer when saved (no pyplot,
no global backend switch at import); the HTML report embeds them (base64), so it is one file.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from cryozssr.evaluate.compare import Row
from cryozssr.io import atomic_path

#: (JSON key, column title, format) of the summary table.
COLUMNS: list[tuple[str, str, str]] = [
    ("pixel_size_angstrom", "pixel (Å)", "{:.3f}"),
    ("frc_below_nyquist", "FRC < LR Nyq", "{:.3f}"),
    ("frc_nyquist_1.33x", "FRC Nyq–1.33×", "{:.3f}"),
    ("frc_nyquist_1.33x_vs_hr", "÷ HR", "{:.2f}"),
    ("frc_1.33x_1.67x", "FRC 1.33–1.67×", "{:.3f}"),
    ("frc_1.33x_1.67x_vs_hr", "÷ HR", "{:.2f}"),
    ("half_frc_below_nyquist", "half-set FRC < LR Nyq", "{:.3f}"),
    ("half_frc_nyquist_1.33x", "half-set FRC Nyq–1.33×", "{:.3f}"),
    ("half_frc_1.33x_1.67x", "half-set FRC 1.33–1.67×", "{:.3f}"),
    ("ctf_fit_resolution_angstrom", "CTF fit res (Å)", "{:.2f}"),
    ("ctf_score", "CTF score", "{:.3f}"),
    ("ctf_defocus_error_percent", "defocus err (%)", "{:.2f}"),
    ("fsc_half_0.143_angstrom", "FSC half 0.143 (Å)", "{:.2f}"),
    ("fsc_truth_0.5_angstrom", "FSC truth 0.5 (Å)", "{:.2f}"),
]


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Column titles and formatted cells, leaving out columns no row has."""
    keep = [
        c for c in COLUMNS
        if c[0] == "pixel_size_angstrom" or any(r.figures.get(c[0]) is not None for r in rows)
    ]  # fmt: skip
    cells = []
    for r in rows:
        vals = {"pixel_size_angstrom": r.pixel_size_angstrom, **r.figures}
        row = [r.name]
        for k, _, fmt in keep:
            v = vals.get(k)
            text = "–" if v is None else fmt.format(v)
            flag = k.removesuffix("_angstrom") + "_beyond_last_shell"
            if k.endswith("_angstrom") and vals.get(flag):
                text = "<" + text  # FSC never fell below its threshold: finer than the last shell
            row.append(text)
        cells.append(row)
    return ["method"] + [t for _, t, _ in keep], cells


def to_json(rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "rows": [
            {"name": r.name, "pixel_size_angstrom": r.pixel_size_angstrom, "figures": r.figures,
             "curves": r.curves}
            for r in rows
        ],
    }  # fmt: skip


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs):
    """``(figure, axes)`` as ``pyplot.subplots`` gives them, without pyplot's global state."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _display(img: torch.Tensor) -> torch.Tensor:
    lo, hi = torch.quantile(
        img.flatten()[:: max(1, img.numel() // 200_000)].double(),
        torch.tensor([0.01, 0.99], dtype=torch.float64),
    )
    return img.double().clamp(float(lo), float(hi))


def make_plots(rows: Sequence[Row], out_dir: Path, *, lr_pixel_angstrom: float) -> list[Path]:
    """Write the PNG plots into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    stem = next((s for r in rows for s in r.ctf_fits), None)
    n = len(rows)
    if stem is not None:
        fig, axes = _subplots(1, n, figsize=(3 * n, 3.2), squeeze=False)
        for ax, r in zip(axes[0], rows, strict=True):
            spec = r.ctf_fits[stem].spectrum_2d
            ax.imshow(_display(spec).numpy(), cmap="gray")
            ax.set_title(
                f"{r.name}\n{r.ctf_fits[stem].fit_resolution_angstrom:.2f} Å fit", fontsize=9
            )
            ax.axis("off")
        fig.suptitle(f"background-subtracted power spectra ({stem})", fontsize=10)
        paths.append(_save(fig, out_dir / "spectra.png"))

        fig, axes = _subplots(n, 1, figsize=(8, 1.8 * n), squeeze=False, sharex=True)
        for ax, r in zip(axes[:, 0], rows, strict=True):
            f = r.ctf_fits[stem]
            k = f.k_per_angstrom.numpy()
            s = f.spectrum_1d.numpy()
            sel = k > 1 / 30
            scale = s[sel].std() if sel.any() else 1.0
            ax.plot(k, s / max(scale, 1e-12), lw=0.8, label="spectrum")
            ax.plot(k, (f.fit_1d.numpy() - 0.5) * 2, lw=0.8, label="CTF² fit")
            ax.plot(k, f.fit_cc_1d.numpy() * 2, lw=0.8, label="fit CC ×2")
            ax.axvline(1 / f.fit_resolution_angstrom, color="k", ls=":", lw=0.8)
            ax.set_ylim(-3, 3)
            ax.set_ylabel(r.name, fontsize=9)
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("spatial frequency (1/Å)")
        paths.append(_save(fig, out_dir / "ctf_profiles.png"))

    nyq = 0.5 / lr_pixel_angstrom
    if any(key in r.curves for r in rows for key in ("frc", "half_frc")):
        fig, ax = _subplots(figsize=(7, 4))
        for i, r in enumerate(rows):
            colour = f"C{i}"
            if "frc" in r.curves:
                c = r.curves["frc"]
                ax.plot(
                    c["k_per_angstrom"], c["frc"], lw=1, color=colour, label=f"{r.name} vs truth"
                )
            if "half_frc" in r.curves:
                c = r.curves["half_frc"]
                ax.plot(c["k_per_angstrom"], c["frc"], lw=1, ls="--", color=colour,
                        label=f"{r.name} even vs odd")  # fmt: skip
        for f in (1.0, 4 / 3, 5 / 3):
            ax.axvline(nyq * f, color="gray", ls=":", lw=0.8)
        ax.set(xlabel="spatial frequency (1/Å)", ylabel="FRC", ylim=(-0.1, 1.02),
               title="FRC (dotted: LR Nyquist, 1.33×, 1.67×)")  # fmt: skip
        ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / "frc.png"))
    if any("fsc_half" in r.curves for r in rows):
        fig, axes = _subplots(1, 2, figsize=(12, 4))
        for ax, key, thr, title in (
            (axes[0], "fsc_half", 0.143, "half-map FSC"),
            (axes[1], "fsc_truth", 0.5, "FSC against the true map"),
        ):
            for r in rows:
                if key in r.curves:
                    ax.plot(
                        r.curves[key]["k_per_angstrom"], r.curves[key]["fsc"], lw=1, label=r.name
                    )
            ax.axhline(thr, color="gray", ls=":", lw=0.8)
            ax.set(xlabel="spatial frequency (1/Å)", ylabel="FSC", title=title, ylim=(-0.1, 1.02))
            ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / "fsc.png"))
    crops = [r for r in rows if r.crop is not None]
    if crops:
        fig, axes = _subplots(1, len(crops), figsize=(3 * len(crops), 3.2), squeeze=False)
        for ax, r in zip(axes[0], crops, strict=True):
            ax.imshow(_display(r.crop).numpy(), cmap="gray", interpolation="nearest")
            ax.set_title(r.name, fontsize=9)
            ax.axis("off")
        fig.suptitle("micrograph crops (same area)", fontsize=10)
        paths.append(_save(fig, out_dir / "crops.png"))
    return paths


def write_report(
    rows: Sequence[Row], out_dir: str | Path, *, meta: dict[str, Any], lr_pixel_angstrom: float
) -> Path:
    """Write ``evaluation.json``, ``plots/*.png`` and ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    data = to_json(rows, meta)
    with atomic_path(out_dir / "evaluation.json") as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=1, default=_jsonable, allow_nan=False))
    plots = make_plots(rows, out_dir / "plots", lr_pixel_angstrom=lr_pixel_angstrom)
    head, cells = table_rows(rows)
    table = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>\n"
    table += "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells
    )
    imgs = "\n".join(
        f'<h2>{html.escape(p.stem)}</h2><img alt="{p.stem}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in plots
    )
    notes = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in meta.items()
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>cryozssr evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}img{{max-width:100%}}</style>
</head><body><h1>cryozssr evaluation</h1><ul>{notes}</ul><table>{table}</table>{imgs}
</body></html>"""
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page)
    return out_dir / "report.html"


def _finite(obj: Any) -> Any:
    """Non-finite floats become ``null`` (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return _finite(obj.tolist())
    return str(obj)
