"""The book's table of contents and its links to the package."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> set[str]:
    text = (ROOT / "_toc.yml").read_text()
    return set(re.findall(r"(?:file|root):\s*([\w/]+)", text))


def test_toc_lists_every_chapter_file_and_nothing_missing():
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").glob("*.md")}
    listed = toc_files()
    assert on_disk - listed == set(), f"chapters missing from _toc.yml: {sorted(on_disk - listed)}"
    assert listed - on_disk == set(), f"_toc.yml lists files that do not exist: {sorted(listed - on_disk)}"


def test_every_equation_label_named_in_src_exists_in_the_book():
    book = "\n".join(p.read_text() for p in (ROOT / "book").glob("*.md"))
    defined = set(re.findall(r"\$\$\s*\((eq-[\w-]+)\)", book))
    named = set()
    for path in (ROOT / "src").rglob("*.py"):
        named |= set(re.findall(r"\b(eq-[a-z][\w-]*[a-z0-9])", path.read_text()))
    assert named, "no equation labels found in src/"
    assert named - defined == set(), f"labels named in src/ but not defined in book/: {sorted(named - defined)}"


def test_chapters_glue_numbers_instead_of_typing_them():
    """Each executable chapter uses glue (numbers in prose come from the run)."""
    for path in (ROOT / "book").glob("*.md"):
        text = path.read_text()
        if "code-cell" in text:
            assert "glue(" in text, f"{path.name} has code cells but glues no number into its prose"


# Chapters that import SymPy but are allowed to have no executed assert, each with its reason.
SYMPY_WITHOUT_ASSERT = {
    # Its SymPy cell is the reader's own cell step: `extension.cell_report` differentiates it and the
    # chapter glues the SymPy-vs-autograd gap (ext-sympy) into its prose without asserting it.
    "extending.md",
}


def executed_code_cells(text: str) -> list[str]:
    """Source of each ```{code-cell} block of a MyST notebook, without its ---...--- metadata block;
    cells tagged skip-execution or raises-exception are left out."""
    out = []
    for cell in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", text, re.S | re.M):
        meta = re.match(r"---\n(.*?)\n---\n", cell, re.S)
        if meta and re.search(r"skip-execution|raises-exception", meta.group(1)):
            continue
        out.append(cell[meta.end() :] if meta else cell)
    return out


def count_asserts(source: str) -> int:
    """Assert statements in a cell's Python source (IPython magics and shell lines removed)."""
    import ast

    source = re.sub(r"^\s*[%!].*$", "", source, flags=re.M)
    return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(source)))


def test_chapters_that_use_sympy_assert_in_an_executed_cell():
    """A chapter whose code imports sympy checks its derivations at build: some executed code cell holds
    an assert statement."""
    missing = []
    for path in sorted((ROOT / "book").glob("*.md")):
        cells = executed_code_cells(path.read_text())
        if not any(re.search(r"^\s*(import sympy|from sympy\b)", c, re.M) for c in cells):
            continue
        if path.name not in SYMPY_WITHOUT_ASSERT and sum(map(count_asserts, cells)) == 0:
            missing.append(path.name)
    assert missing == [], f"chapters that import sympy but assert nothing in an executed cell: {missing}"
    stale = {name for name in SYMPY_WITHOUT_ASSERT if not (ROOT / "book" / name).exists()}
    assert stale == set(), f"allow-listed chapters that no longer exist: {sorted(stale)}"
    sample = "```{code-cell} ipython3\nimport sympy as sp\n```\n```{code-cell} ipython3\nassert 1\n```\n"
    assert sum(map(count_asserts, executed_code_cells(sample))) == 1
    assert count_asserts("x = 1  # assert in a comment\ns = 'assert'") == 0
