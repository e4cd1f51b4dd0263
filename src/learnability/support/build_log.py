"""What went wrong in a Jupyter Book build, read from its log: failed code cells (located at their ``{code-cell}``
line in the chapter's .md), warnings and errors Sphinx reported, and a build that stopped on an exception.

``python -m learnability.support.build_log _build/build.log`` prints that summary for a finished build (``make book``
calls it when the build fails); ``learnability chapter`` applies the same reading to the build it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING = re.compile(r"^(?:(?P<where>.+?): )?(?P<level>WARNING|ERROR|CRITICAL|SEVERE): (?P<text>.*)$", re.M)
_EXECUTING = re.compile(r"^(?P<path>.+?): Executing notebook", re.M)
_CELL = re.compile(
    r"An error occurred while executing the following cell:\n-{18}\n(?P<source>.*?)\n-{18}\n"
    r"(?P<trace>.*?)(?=\n\s*\nThe above exception|\Z)",
    re.S,
)
_CELL_FRAME = re.compile(r"^Cell In\[(?P<count>\d+)\], line (?P<line>\d+)", re.M)
_FATAL = re.compile(
    r"^(?:Exception occurred:\n(?:[ \t].*\n)*|(?:Extension|Sphinx|Configuration|Theme) error"
    r"(?: \(.*\))?:\n)(?P<text>\S.*)$",
    re.M,
)
# Warnings about a reference whose target lives in a page the build did not include (a one-page build: the other
# chapters, and references.md with the bibliography), as Sphinx, sphinx-proof and sphinxcontrib-bibtex word them
_UNRESOLVED = tuple(
    re.compile(pattern)
    for pattern in (
        r'^could not find bibtex key "(?P<target>[^"]+)"$',
        r"^undefined label: '(?P<target>[^']+)'$",
        r"^equation not found: (?P<target>\S+)$",
        r"^label '(?P<target>[^']+)' not found\.$",
        r"^prf:ref reference target not found: (?P<target>\S+)$",
        r"^unknown document: '(?P<target>[^']+)'$",
    )
)
# Targets a chapter defines: (label)= before a heading or figure, :label:/:name: options, $$ ... $$ (label)
_TARGET = re.compile(
    r"^\((?P<paren>[^()\s]+)\)=\s*$|^\s*:(?:label|name):\s*(?P<option>\S+)\s*$"
    r"|^.*\$\$\s*\((?P<equation>[^()\s]+)\)\s*$",
    re.M,
)
_BIB_KEY = re.compile(r"^@\w+\s*\{\s*(?P<key>[^,\s]+)\s*,", re.M)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing that makes a build fail: where (a file and a line of it, when known) and what."""

    file: str | None
    line: int | None
    text: str

    def located(self, root: Path | None = None) -> str:
        """``file:line: text``, the file relative to ``root`` when it lies inside it."""
        where = self.file
        if where is not None and root is not None and Path(where).is_relative_to(root):
            where = str(Path(where).relative_to(root))
        location = ":".join(str(part) for part in (where, self.line) if part is not None)
        return f"{location}: {self.text}" if location else self.text


def code_cells(markdown: str) -> list[tuple[int, str]]:
    """The code cells of a MyST Markdown notebook as myst-nb reads (and executes) them, in order: for each, the line
    of its ``{code-cell}`` fence in the file (from 1) and its source. Raises ValueError when myst-nb cannot read it."""
    from myst_nb.core.read import MystMetadataParsingError, read_myst_markdown_notebook

    try:
        notebook = read_myst_markdown_notebook(markdown, add_source_map=True)
    except MystMetadataParsingError as err:
        raise ValueError(f"not a readable MyST notebook: {err}") from None
    return [
        (line, cell.source)
        for cell, line in zip(notebook.cells, notebook.metadata["source_map"])
        if cell.cell_type == "code"
    ]


def _cell_problem(match: re.Match, path: str | None, sources: Mapping[str, str]) -> Problem:
    """The failed cell of ``match`` (a ``_CELL`` match): its fence line in ``path`` when the chapter's source is in
    ``sources`` and holds a cell with the printed source (of several, the one the traceback's ``In[n]`` counts), and
    the exception's last line."""
    trace = [line for line in match["trace"].splitlines() if line.strip()]
    exception = trace[-1].strip() if trace else "(no traceback in the log)"
    frame = _CELL_FRAME.search(match["trace"])
    where_in_cell = f" (its line {frame['line']})" if frame else ""
    cells = code_cells(sources[path]) if path in sources else []
    matches = [i for i, (_, source) in enumerate(cells) if source == match["source"]]
    counted = int(frame["count"]) - 1 if frame else None
    index = counted if counted in matches else (matches[0] if matches else None)
    line = cells[index][0] if index is not None else None
    return Problem(path, line, f"code cell failed{where_in_cell}: {exception}")


def problems(log: str, sources: Mapping[str, str]) -> list[Problem]:
    """Every problem a Jupyter Book build log reports, in log order: each failed code cell (file, the line of its
    ``{code-cell}`` fence, the exception line), each Sphinx warning or error (file and line as Sphinx gives them,
    the text), and, when the build stopped on an exception that was not a failed cell, that exception. ``sources``
    maps a chapter's path, as the log writes it, to its MyST Markdown text (to locate failed cells)."""
    log = _ANSI.sub("", log)
    found: list[tuple[int, Problem]] = []
    for match in _WARNING.finditer(log):
        where, _, line = (match["where"] or "").rpartition(":")
        if not line.isdigit():
            where, line = match["where"], ""
        found.append((match.start(), Problem(where, int(line) if line else None, f"{match['level']}: {match['text']}")))
    executing = [(m.start(), m["path"]) for m in _EXECUTING.finditer(log)]
    cells = list(_CELL.finditer(log))
    for match in cells:
        path = next((p for start, p in reversed(executing) if start < match.start()), None)
        found.append((match.start(), _cell_problem(match, path, sources)))
    if not cells:
        found.extend((m.start(), Problem(None, None, f"the build stopped: {m['text']}")) for m in _FATAL.finditer(log))
    return [problem for _, problem in sorted(found, key=lambda item: item[0])]


def defined_targets(
    chapters: Collection[str], bibtex: Collection[str] = (), documents: Collection[str] = ()
) -> set[str]:
    """The reference targets defined in ``chapters`` (MyST Markdown texts: labels, names, equation labels), the
    keys of the BibTeX texts ``bibtex`` and the document names ``documents``."""
    targets = set(documents)
    for text in chapters:
        targets.update(next(label for label in m.groups() if label) for m in _TARGET.finditer(text))
    for text in bibtex:
        targets.update(m["key"] for m in _BIB_KEY.finditer(text))
    return targets


def excusable(problem: Problem, elsewhere: Collection[str]) -> bool:
    """Whether ``problem`` is a warning that a reference did not resolve whose target is one of ``elsewhere`` (the
    targets of pages outside the build): expected in a one-page build, and nothing else is."""
    text = problem.text.removeprefix("WARNING: ")
    if text == problem.text:
        return False
    return any((m := pattern.match(text)) is not None and m["target"] in elsewhere for pattern in _UNRESOLVED)


def book_sources(root: Path) -> dict[str, str]:
    """The MyST Markdown chapters under ``root``/book, keyed by their absolute path (as a build's log writes it)."""
    book = root / "book"
    if not book.is_dir():
        raise ValueError(f"no book/ folder under {root}")
    return {str(path.absolute()): path.read_text() for path in sorted(book.glob("*.md"))}


def summary(found: Sequence[Problem], root: Path | None = None) -> str:
    """The problems, one a line (paths relative to ``root``), under a line that counts them."""
    head = f"{len(found)} problem{'s' if len(found) != 1 else ''} in the build:"
    return "\n".join([head, *(f"  {problem.located(root)}" for problem in found)])


def main(argv: list[str] | None = None) -> int:
    """Print the problems of a build log (``make book`` calls this when the build failed); 1 when there are any."""
    parser = argparse.ArgumentParser(
        prog="python -m learnability.support.build_log",
        description="Summarise what failed in a Jupyter Book build log.",
    )
    parser.add_argument("log", type=Path, help="the build's log, e.g. _build/build.log")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the book's repository root (default: here)")
    args = parser.parse_args(argv)
    if not args.log.is_file():
        parser.error(f"no log file {args.log}")
    found = problems(args.log.read_text(errors="replace"), book_sources(args.root.absolute()))
    if not found:
        print(f"build log {args.log}: no warning, error or failed cell found; its last lines say why it failed")
        return 0
    print("\n" + summary(found, args.root.absolute()))
    return 1


if __name__ == "__main__":
    sys.exit(main())
