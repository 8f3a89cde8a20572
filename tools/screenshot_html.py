"""Render a saved Bokeh page in headless Chromium and save a full-page screenshot.

For looking at what `cpet_nb.report.plots.save_html` wrote, as a reader's browser shows it
(offline: the page must not fetch anything). Needs Playwright's Python package and a system
Chromium (never `playwright install`)::

    apt-get install -y chromium && pip install playwright
    python tools/screenshot_html.py report.html /tmp/plots-report.png

Exits 1 when the page logs a JavaScript error or Bokeh does not finish rendering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def screenshot(page_path: Path, image_path: Path, width: int = 1200,
               timeout_ms: int = 60_000) -> list[str]:
    """Render ``page_path``, wait until Bokeh is idle, save ``image_path``; return the
    page's console errors and the requests it tried to make off the local file system."""
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
            page.goto(page_path.resolve().as_uri())
            page.wait_for_function("window.Bokeh !== undefined && Bokeh.documents.length > 0 "
                                   "&& Bokeh.documents[0].is_idle", timeout=timeout_ms)
            page.screenshot(path=str(image_path), full_page=True)
        finally:
            browser.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the .html file")
    parser.add_argument("image", type=Path, help="the .png to write")
    parser.add_argument("--width", type=int, default=1200, help="viewport width (px)")
    args = parser.parse_args(argv)
    problems = screenshot(args.page, args.image, args.width)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(args.image)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
