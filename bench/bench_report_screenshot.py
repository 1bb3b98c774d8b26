"""Look at an evaluation report as a person would: a headless-Chromium screenshot of report.html.

    python bench/bench_report_screenshot.py cryozssr_demo/report/report.html --png report.png

Skips (exit 0, one line) where no Chromium is installed. The page is rendered at 1280 px wide;
open the PNG and read it: verdicts first, the table with its legend, plots with Angstrom axes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2400) -> Path:
    """Render ``html`` into ``png`` with headless Chromium; raises if no browser or no image."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium on PATH")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
    if not png.is_file() or png.stat().st_size < 10_000:
        raise RuntimeError(f"Chromium wrote no screenshot at {png}")
    return png


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("report", type=Path, help="report.html of `cryozssr evaluate` or `demo`")
    ap.add_argument("--png", type=Path, default=Path("bench/results/report_screenshot.png"))
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args()
    if find_browser() is None:
        print("skipped: no Chromium installed (apt-get install chromium)")
        return
    if not args.report.is_file():
        sys.exit(f"no report at {args.report}")
    args.png.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {screenshot(args.report, args.png, height=args.height)}")


if __name__ == "__main__":
    main()
