"""Render a saved Bokeh page in headless Chromium and save a full-page screenshot.

For looking at what `cpet_nb.report.plots.save_html` wrote, as a reader's browser shows it
(offline: the page must not fetch anything). Needs Playwright's Python package and a system
Chromium (never `playwright install`)::

    apt-get install -y chromium && pip install playwright
    python tools/screenshot_html.py report.html /tmp/plots-report.png
    python tools/screenshot_html.py report.html /tmp/report.png --tiles 1600   # long pages

With ``--tiles``, the page is saved as ``report-01.png``, ``report-02.png``, ... of that
height each (a long report in one image is too tall to read). Exits 1 when the page logs a
JavaScript error, tries to fetch anything off the local file system, or Bokeh does not
finish rendering every document on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def screenshot(page_path: Path, image_path: Path, width: int = 1200,
               timeout_ms: int = 180_000, tile_px: int = 0) -> list[str]:
    """Render ``page_path``, wait until every Bokeh document on it is idle, save
    ``image_path`` (or tiles of ``tile_px`` each, numbered); return the page's console
    errors and the requests it tried to make off the local file system."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: problems.append(f"console: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: problems.append(f"request: {r.url}")
                    if not r.url.startswith(("file:", "data:", "blob:")) else None)
            started = time.perf_counter()
            page.goto(page_path.resolve().as_uri(), timeout=timeout_ms)
            page.wait_for_function("window.Bokeh !== undefined && Bokeh.documents.length > 0 "
                                   "&& Bokeh.documents.every(d => d.is_idle)",
                                   timeout=timeout_ms)
            print(f"rendered in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            if not tile_px:
                page.screenshot(path=str(image_path), full_page=True)
                return problems
            height = page.evaluate("document.documentElement.scrollHeight")
            for i, top in enumerate(range(0, height, tile_px), 1):
                tile = image_path.with_name(f"{image_path.stem}-{i:02d}{image_path.suffix}")
                page.screenshot(path=str(tile), full_page=True, clip={
                    "x": 0, "y": top, "width": width, "height": min(tile_px, height - top)})
        finally:
            browser.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the .html file")
    parser.add_argument("image", type=Path, help="the .png to write")
    parser.add_argument("--width", type=int, default=1200, help="viewport width (px)")
    parser.add_argument("--tiles", type=int, default=0, metavar="PX",
                        help="save the page in numbered tiles of this height")
    args = parser.parse_args(argv)
    problems = screenshot(args.page, args.image, args.width, tile_px=args.tiles)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(args.image)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
