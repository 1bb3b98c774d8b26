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

from cryozssr.evaluate import pairs, summary
from cryozssr.evaluate.compare import Row
from cryozssr.io import atomic_path


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Column titles and formatted cells of the full table (see :mod:`.summary`)."""
    cols, cells = summary.table(rows)
    return ["method"] + [c.title for c in cols], cells


def to_json(rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "rows": [
            {"name": r.name, "pixel_size_angstrom": r.pixel_size_angstrom, "figures": r.figures,
             "curves": r.curves}
            for r in rows
        ],
        "method_pairs": pairs.method_pairs(rows),
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


def _angstrom_axis(ax) -> None:
    """Label a spatial-frequency axis (1/A) with resolutions in A."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda k, _: f"{1 / k:.1f}" if k > 0 else "∞"))
    ax.set_xlabel("resolution (Å)")


def _zoom(img: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` square of ``img`` (the same area on every 2x image)."""
    h, w = img.shape[-2:]
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return img[y0 : y0 + size, x0 : x0 + size]


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
        fig.suptitle(
            f"power spectra of micrograph {stem} (the table's CTF column is the mean over "
            "all micrographs)",
            fontsize=10,
        )
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
        _angstrom_axis(axes[-1, 0])
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
        ax.set(ylabel="FRC", ylim=(-0.1, 1.02),
               title=f"FRC (dotted: LR Nyquist {1 / nyq:.1f} Å, then 1.33×, 1.67×)")  # fmt: skip
        _angstrom_axis(ax)
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
            ax.set(ylabel="FSC", title=title, ylim=(-0.1, 1.02))
            _angstrom_axis(ax)
            ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / "fsc.png"))
    crops = [(r.name, r.crop, 2 if r.name == "LR" else 1) for r in rows if r.crop is not None]
    truth = next((r.truth_crop for r in rows if r.truth_crop is not None), None)
    if truth is not None:
        crops.append(("truth (noiseless)", truth, 1))
    if crops:
        zoom = 128  # HR px: small enough to see single pixels, large enough for a particle
        fig, axes = _subplots(1, len(crops), figsize=(2.6 * len(crops), 3.0), squeeze=False)
        for ax, (name, img, up) in zip(axes[0], crops, strict=True):
            part = _zoom(img, zoom // up)
            ax.imshow(_display(part).numpy(), cmap="gray", interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.axis("off")
        fig.suptitle(
            f"the same {zoom} × {zoom} HR-pixel area of the first micrograph, every method",
            fontsize=10,
        )
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
    page = _page(rows, plots, meta)
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page)
    return out_dir / "report.html"


SECTION_TITLES = {
    "crops": "Zoomed crops: does the detail look real?",
    "frc": "Fourier ring correlation, per resolution",
    "fsc": "3D reconstruction: Fourier shell correlation",
    "spectra": "Power spectra and CTF fits (first micrograph)",
    "ctf_profiles": "CTF fit profiles (first micrograph)",
}
_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1250px;line-height:1.35}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 7px}
td{text-align:right}td:first-child,th{text-align:left}th{background:#eee;font-size:90%}
.dir{font-weight:normal;color:#555}img{max-width:100%}.warn{background:#fff3cd;padding:.5em 1em}
.verdict li{margin:.2em 0}dl.legend dt{font-weight:bold}dl.legend dd{margin:0 0 .4em 1.5em}"""


def _page(rows: Sequence[Row], plots: Sequence[Path], meta: dict[str, Any]) -> str:
    """The HTML report: verdicts, warnings, the table with its legend, plots, settings."""
    esc = html.escape
    cols, cells = summary.table(rows)
    arrow = {"higher": "↑ higher is better", "lower": "↓ lower is better", "": ""}
    head = "<tr><th>method</th>" + "".join(
        f"<th>{esc(c.title)}<br><span class=dir>{arrow[c.better]}</span></th>" for c in cols
    )
    body = "\n".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in cells)
    legend = "".join(
        f"<dt>{esc(c.title)}</dt><dd>{esc(c.legend)} {esc(arrow[c.better])}</dd>" for c in cols
    )
    verdicts = "".join(f"<li>{esc(summary.verdict(r))}</li>" for r in rows)
    warns = "".join(f"<p class=warn>{esc(w)}</p>" for w in summary.warnings(rows))
    n_mic = max((r.figures.get("n_micrographs") or 0) for r in rows)
    imgs = "\n".join(
        f'<h2>{esc(SECTION_TITLES.get(p.stem, p.stem))}</h2><img alt="{esc(p.stem)}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in plots
    )
    settings = "".join(
        f"<tr><td>{esc(k)}</td><td style='text-align:left'>{esc(v)}</td></tr>"
        for k, v in _flatten(meta)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>cryozssr evaluation</title><style>{_CSS}</style></head><body>
<h1>cryozssr evaluation</h1>
<p>Does 2x super-resolution recover real detail past the camera's Nyquist limit, or only
interpolate? The first list answers it per method; the table holds the evidence.</p>
<h2>Verdict per method</h2><ul class=verdict>{verdicts}</ul>{warns}{_pairs_section(rows)}
<h2>All figures</h2><p>Means over {n_mic} micrograph(s); "a ± b": b is the spread
(standard deviation) between micrographs. LR is the camera's own image; HR (simulations) a camera
with 2x smaller pixels.</p>
<table>{head}</tr>{body}</table>
<h3>What the columns mean</h3><dl class=legend>{legend}</dl>
{imgs}
<h2>Run settings</h2><table>{settings}</table>
</body></html>"""


def _pairs_section(rows: Sequence[Row]) -> str:
    """Method against method by the score (and the truth), on the movies both ran."""
    found = pairs.method_pairs(rows)
    if not found:
        return ""
    esc = html.escape
    intro = (
        "<h2>Method against method (no truth needed)</h2><p>Does the alias score tell two "
        "methods apart on these movies? Each cell reads the row's method against the column's: "
        "the difference of their score z, movie by movie (the interpolation baseline cancels "
        "in it), mean ± its standard error; <i>above</i> or <i>below</i> only where a paired "
        "test over the movies says so "
        f"(two-sided {100 * pairs.PAIR_LEVEL:g}%, at least {pairs.MIN_PAIR_MOVIES} movies); "
        "<i>not told apart</i> is a "
        "difference within the score's noise, not evidence that the two are equal. It needs "
        "more movies than the verdict above: the verdict's test knows its noise, this one "
        "measures it from the spread between movies. Two methods whose verdict above is both "
        "<i>no</i> are not ordered (<i>neither shows evidence of detail</i>): what still "
        "tells such methods apart, such as interpolation's mirror of the detail below the "
        "Nyquist, is not what the score measures."
    )
    if not pairs.comparable(found):
        n = max(p["n_movies"] for p in found)
        return (
            f"{intro} It needs at least {pairs.MIN_PAIR_MOVIES} movies scored by both; "
            f"this evaluation has {n}.</p>"
        )
    if any(p["truth_difference"] is not None for p in found):
        intro += " Beside it, the truth: the difference of their FRC past the Nyquist."
    names = list(dict.fromkeys(n for p in found for n in (p["first"], p["second"])))
    by = {(p["first"], p["second"]): p for p in found}
    head = "<tr><th></th>" + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>"
    body = []
    for a in names:
        cells = []
        for b in names:
            if a == b:
                cells.append("<td></td>")
            elif (a, b) in by:
                cells.append(f"<td>{esc(pairs.cell(by[(a, b)]))}</td>")
            else:
                cells.append(f"<td>{esc(pairs.cell(by[(b, a)], flip=True))}</td>")
        body.append(f"<tr><th>{esc(a)}</th>{''.join(cells)}</tr>")
    return f"{intro}</p><table>{head}{''.join(body)}</table>"


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, value)`` pairs of a nested settings dict, for a readable table."""
    if isinstance(obj, dict):
        out: list[tuple[str, str]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}")
        return out
    if isinstance(obj, list | tuple):
        return [(prefix.rstrip("."), ", ".join(str(v) for v in obj))]
    return [(prefix.rstrip("."), "–" if obj is None else str(obj))]


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
