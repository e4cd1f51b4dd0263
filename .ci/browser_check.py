"""Open every page of the built book in headless Chromium and fail on what a reader would see broken.

Serves _build/html on 127.0.0.1, loads each page listed in _toc.yml and checks: the page loads with no console
error and no failed request; no request leaves localhost (the book must read offline, MathJax included); MathJax
typesets without errors (no mjx-merror) on pages with math; every image has loaded; no code cell shows a
traceback; every page with code cells offers its executed notebook (.ipynb) for download; every in-book link points
to an existing page and, with a #fragment, to an existing id. Saves a screenshot of one chapter to _build/browser/.
Usage: python .ci/browser_check.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pages() -> list[str]:
    """HTML paths (relative to _build/html) of every file _toc.yml lists, in order."""
    names = re.findall(r"(?:file|root):\s*([\w/]+)", (ROOT / "_toc.yml").read_text())
    return [f"{name}.html" for name in names]


MISSING: list[str] = []  # paths the server answered 404, for the report
BENIGN = ("Got invalid theme mode",)  # the theme's notice on a fresh browser profile


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if code == 404:
            MISSING.append(self.path)
        super().send_error(code, message, explain)


def serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def ids_of(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))


def check_page(page, base: str, rel: str) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    console: list[str] = []
    failed: list[str] = []
    outside: list[str] = []
    page.on(
        "console", lambda m: console.append(m.text) if m.type == "error" and not m.text.startswith(BENIGN) else None
    )
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(f"{r.url} ({r.status})") if r.status >= 400 else None)
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:")
            else None
        ),
    )
    page.goto(urljoin(base, rel), wait_until="load")
    has_math = page.evaluate("document.querySelectorAll('.math, div.math, span.math').length") > 0
    if has_math:
        try:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
            page.evaluate("MathJax.startup.promise")
        except PlaywrightTimeout:
            problems.append("MathJax did not load (is it served from _static, not a CDN?)")
        if page.evaluate("document.querySelectorAll('mjx-container').length") == 0:
            problems.append("math present but MathJax typeset nothing")
        if page.evaluate("document.querySelectorAll('mjx-merror').length"):
            problems.append("MathJax reported an error in a formula")
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))"
    )
    problems += [f"image not loaded: {src}" for src in broken]
    if page.evaluate("document.querySelectorAll('div.cell').length"):
        notebook = page.evaluate(
            "Array.from(document.querySelectorAll('a.btn-download-notebook-button')).map(a => a.href)"
        )
        if not notebook:
            problems.append("a page with code cells offers no .ipynb download")
        elif page.request.get(notebook[0]).status != 200:
            problems.append(f"the .ipynb download is missing: {notebook[0]}")
    if page.evaluate("document.querySelectorAll('.output.traceback, .output.error, pre.traceback').length"):
        problems.append("a code cell shows an error/traceback")
    problems += [f"console error: {m}" for m in console if "404" not in m]  # 404s are reported by path below
    problems += [f"request failed: {u}" for u in failed]
    problems += [f"request leaves localhost (not offline): {u}" for u in sorted(set(outside))]
    links = set(page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"))
    return problems, {u for u in links if u.startswith(base)}


def check_links(links: set[str], base: str) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    for url in sorted(links):
        target, fragment = urldefrag(url)
        path = HTML / urlparse(target).path.lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            problems.append(f"broken link: {url}")
        elif fragment and path.suffix == ".html":
            if fragment not in cache.setdefault(path, ids_of(path)):
                problems.append(f"broken anchor: {url}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--screenshot", default="p3_oscillator", help="chapter to photograph")
    args = parser.parse_args()
    if not (HTML / "index.html").is_file():
        print("browser-check: no _build/html; run `make book` first", file=sys.stderr)
        return 2
    server, base = serve()
    problems: dict[str, list[str]] = {}
    links: set[str] = set()
    shot = ROOT / "_build" / "browser" / f"{args.screenshot}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=FLAGS)
        for rel in pages():
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            found, page_links = check_page(page, base, rel)
            links |= page_links
            if found:
                problems[rel] = found
            if Path(rel).stem == args.screenshot:
                page.screenshot(path=str(shot), full_page=False)
            page.close()
        browser.close()
    missing = sorted({m for m in MISSING if m != "/favicon.ico"})  # browsers ask for a favicon unprompted
    if missing:
        problems["server"] = [f"404 for {m}" for m in missing]
    link_problems = check_links(links, base)
    if link_problems:
        problems["links"] = link_problems
    server.shutdown()
    for rel, found in problems.items():
        for p in found:
            print(f"{rel}: {p}")
    print(
        f"browser-check: {len(pages())} pages, {len(links)} in-book links, screenshot {shot.relative_to(ROOT)}; "
        f"{'FAILED' if problems else 'ok'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
