"""The book's table of contents and its links to the package."""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from myst_notebook import MYST_HEADER

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


# The chapter template (issue #18 item 4): each rule is a checker taking (chapter name, text) and returning its
# violations as "chapter:line: what", so a failing chapter lists every one of them.

HIDING_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell")
TEMPLATE_PREFIXES = ("p1_", "p2_", "p3_", "extending.")
MAX_CODE_LINE = 88
MAX_SHOWN_LINES = 15


@dataclass(frozen=True)
class CodeCell:
    line: int  # line of the ```{code-cell} fence in the chapter (1-based)
    meta: dict  # the cell's ---...--- YAML metadata ({} when it has none)
    source: str  # its code, without the metadata
    first: int  # chapter line of the first line of ``source``

    @property
    def tags(self) -> list[str]:
        return list(self.meta.get("tags") or [])

    @property
    def figure(self) -> dict:
        return (self.meta.get("mystnb") or {}).get("figure") or {}


def code_cells(text: str) -> list[CodeCell]:
    """Every ```{code-cell} block of a MyST notebook with its metadata and where it sits in the chapter."""
    import yaml

    cells = []
    for match in re.finditer(r"^```\{code-cell\}[^\n]*\n(.*?)^```", text, re.S | re.M):
        body, line = match.group(1), text.count("\n", 0, match.start()) + 1
        meta = re.match(r"---\n(.*?\n)?---\n", body, re.S)
        source = body[meta.end() :] if meta else body
        first = line + 1 + (body[: meta.end()].count("\n") if meta else 0)
        cells.append(CodeCell(line, (yaml.safe_load(meta.group(1) or "") or {}) if meta else {}, source, first))
    return cells


def prose(text: str) -> str:
    """The chapter with its code cells blanked (line numbers kept), so only the prose and math remain."""
    return re.sub(r"^```\{code-cell\}.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


def draws_figure(cell: CodeCell) -> bool:
    """A cell whose output is a figure: it uses ``plt.``, a ``plots.<function>(`` or an ``ax``/``axes``; a cell
    tagged remove-output shows no figure."""
    code = re.sub(r"#.*", "", cell.source)
    drawing = re.search(r"\bplt\.|\bplots\.\w+\(|\b(ax|axes)\b", code)
    return bool(drawing) and "remove-output" not in cell.tags


def is_glue_only(source: str) -> bool:
    """Top-level statements are only glue(...) calls, for/if blocks of them and assignments, with at least one
    glue call."""
    import ast

    def glue_call(node: ast.AST) -> bool:
        func = node.value.func if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        return func is not None and getattr(func, "id", getattr(func, "attr", None)) == "glue"

    def allowed(node: ast.stmt) -> bool:
        if isinstance(node, (ast.For, ast.If)):
            return all(map(allowed, node.body + node.orelse))
        return glue_call(node) or isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))

    try:
        tree = ast.parse(re.sub(r"^\s*[%!].*$", "", source, flags=re.M))
    except SyntaxError:
        return False
    return all(map(allowed, tree.body)) and any(glue_call(n) for n in ast.walk(tree) if isinstance(n, ast.stmt))


def figure_metadata_violations(name: str, text: str) -> list[str]:
    """T1: a cell that draws a figure has MyST-NB figure metadata with a caption and a name."""
    return [
        f"{name}:{c.line}: figure cell without mystnb figure caption and name"
        for c in code_cells(text)
        if draws_figure(c) and not (c.figure.get("caption") and c.figure.get("name"))
    ]


def figure_reference_violations(name: str, text: str) -> list[str]:
    """T2: every named figure is referenced in the chapter's prose with {numref}."""
    body = prose(text)
    return [
        f"{name}:{c.line}: figure {c.figure['name']} is not referenced with {{numref}} in the prose"
        for c in code_cells(text)
        if c.figure.get("name")
        and not re.search(r"\{numref\}`([^`]*<)?" + re.escape(str(c.figure["name"])) + r">?`", body)
    ]


def summary_and_differences_violations(name: str, text: str) -> list[str]:
    """T3: a chapter of Parts I-III and extending.md has a `## Summary` section and an admonition whose title
    starts with "What differs from the paper" ("... papers", "... paper's code")."""
    if not name.startswith(TEMPLATE_PREFIXES):
        return []
    out = []
    if not re.search(r"^## Summary\s*$", text, re.M):
        out.append(f"{name}:1: no '## Summary' section")
    if not re.search(r"^(:::+|```+)\{admonition\}\s*What differs from the paper", text, re.M):
        out.append(f"{name}:1: no 'What differs from the paper' admonition")
    return out


def long_code_line_violations(name: str, text: str) -> list[str]:
    """T4: no line of a code cell is longer than 88 characters."""
    return [
        f"{name}:{c.first + i}: code line of {len(line)} characters (> {MAX_CODE_LINE})"
        for c in code_cells(text)
        for i, line in enumerate(c.source.splitlines())
        if len(line) > MAX_CODE_LINE
    ]


def shown_cell_length_violations(name: str, text: str) -> list[str]:
    """T5: a shown cell (not tagged remove-cell, remove-input, hide-input or hide-cell) has at most 15 lines."""
    return [
        f"{name}:{c.line}: shown code cell of {n} lines (> {MAX_SHOWN_LINES})"
        for c in code_cells(text)
        if not set(c.tags) & set(HIDING_TAGS) and (n := len(c.source.strip().splitlines())) > MAX_SHOWN_LINES
    ]


def glue_only_violations(name: str, text: str) -> list[str]:
    """T6: a cell that only glues numbers is tagged remove-cell."""
    return [
        f"{name}:{c.line}: glue-only cell not tagged remove-cell"
        for c in code_cells(text)
        if is_glue_only(c.source) and "remove-cell" not in c.tags
    ]


def equation_text_violations(name: str, text: str) -> list[str]:
    """Equation references in prose are {eq} links, not raw "(eq-label)" text (the label after a $$ block is its
    definition, not a reference)."""
    return [
        f"{name}:{i}: raw equation reference {label}; write {{eq}}`{label[1:-1]}`"
        for i, line in enumerate(prose(text).splitlines(), 1)
        for label in re.findall(r"\(eq-[\w-]+\)", re.sub(r"\$\$\s*\(eq-[\w-]+\)", "", line))
    ]


TEMPLATE_RULES = {
    "T1-figure-metadata": figure_metadata_violations,
    "T2-figure-referenced": figure_reference_violations,
    "T3-summary-and-differences": summary_and_differences_violations,
    "T4-code-line-length": long_code_line_violations,
    "T5-shown-cell-length": shown_cell_length_violations,
    "T6-glue-only-removed": glue_only_violations,
    "equation-links": equation_text_violations,
}
CHAPTERS_WITH_CODE = sorted(p.name for p in (ROOT / "book").glob("*.md") if "```{code-cell}" in p.read_text())


@pytest.mark.parametrize("rule", TEMPLATE_RULES)
@pytest.mark.parametrize("chapter", CHAPTERS_WITH_CODE)
def test_chapter_follows_the_template(chapter, rule):
    violations = TEMPLATE_RULES[rule](chapter, (ROOT / "book" / chapter).read_text())
    assert violations == [], f"{rule}, {len(violations)} violation(s):\n" + "\n".join(violations)


def chapter(*cells: tuple[str, str], prose_text: str = "") -> str:
    """A synthetic chapter: the MyST header, ``prose_text`` and one code cell per (metadata YAML, source)."""
    blocks = [f"---\n{meta}---\n{src}" if meta else src for meta, src in cells]
    return MYST_HEADER + prose_text + "\n" + "".join(f"```{{code-cell}} ipython3\n{b}```\n" for b in blocks)


FIGURE = "mystnb:\n  figure:\n    caption: A line.\n    name: fig-line\n"


def test_figure_metadata_checker_flags_a_figure_without_caption_or_name():
    bad = chapter(("", "plt.plot([1, 2])\n"), ("mystnb:\n  figure:\n    name: fig-a\n", "fig, ax = f()\n"))
    assert [v.split(": ", 1)[0] for v in figure_metadata_violations("x.md", bad)] == ["x.md:7", "x.md:10"]
    good = chapter((FIGURE, "plots.line([1, 2])\n"), ("tags: [remove-output]\n", "plt.plot([1])\n"), ("", "y = 1\n"))
    assert figure_metadata_violations("x.md", good) == []


def test_figure_reference_checker_needs_a_numref_in_the_prose():
    unreferenced = chapter((FIGURE, "plt.plot([1])\n"), prose_text="See the figure fig-line.\n")
    assert figure_reference_violations("x.md", unreferenced) == [
        "x.md:8: figure fig-line is not referenced with {numref} in the prose"
    ]
    in_code_only = chapter((FIGURE, "plt.plot([1])  # {numref}`fig-line`\n"))
    assert len(figure_reference_violations("x.md", in_code_only)) == 1
    for ref in ("{numref}`fig-line`", "{numref}`Figure %s <fig-line>`"):
        assert figure_reference_violations("x.md", chapter((FIGURE, "plt.plot([1])\n"), prose_text=ref)) == []


def test_summary_and_differences_checker():
    box = ":::{admonition} What differs from the paper\n:class: warning\n- Nothing.\n:::\n"
    assert len(summary_and_differences_violations("p1_x.md", chapter(prose_text="# Title\n"))) == 2
    assert len(summary_and_differences_violations("p2_x.md", chapter(prose_text=box + "### Summary\n"))) == 1
    assert summary_and_differences_violations("p3_x.md", chapter(prose_text=box + "## Summary\n- a\n")) == []
    assert summary_and_differences_violations("errata.md", chapter(prose_text="# Title\n")) == []
    assert len(summary_and_differences_violations("extending.md", chapter(prose_text="# Title\n"))) == 2


def test_long_code_line_checker_gives_the_line_of_the_chapter():
    text = chapter(("tags: [remove-cell]\n", "x = 1\n" + "y = " + "1" * 85 + "\n"))
    assert long_code_line_violations("x.md", text) == ["x.md:12: code line of 89 characters (> 88)"]
    assert long_code_line_violations("x.md", chapter(("", "y = " + "1" * 84 + "\n"))) == []


def test_shown_cell_length_checker_ignores_hidden_cells():
    long = "".join(f"x{i} = {i}\n" for i in range(16))
    assert shown_cell_length_violations("x.md", chapter(("", long))) == ["x.md:7: shown code cell of 16 lines (> 15)"]
    assert len(shown_cell_length_violations("x.md", chapter(("tags: [remove-output]\n", long)))) == 1
    for tag in HIDING_TAGS:
        assert shown_cell_length_violations("x.md", chapter((f"tags: [{tag}]\n", long))) == []
    assert shown_cell_length_violations("x.md", chapter(("", long.split("x15")[0]))) == []


def test_glue_only_checker():
    glue_only = "a = f()\nglue('a', a, display=False)\nfor k in ks:\n    if k:\n        glue(k, 1)\n"
    assert is_glue_only(glue_only) and is_glue_only("myst_nb.glue('a', 1)\n")
    assert not is_glue_only("a = f()\n") and not is_glue_only("glue('a', 1)\nassert a > 0\n")
    assert not is_glue_only("glue('a', 1)\nplots.line(a)\n") and not is_glue_only("for k in ks:\n    print(k)\n")
    assert glue_only_violations("x.md", chapter(("", glue_only))) == ["x.md:7: glue-only cell not tagged remove-cell"]
    assert glue_only_violations("x.md", chapter(("tags: [remove-cell]\n", glue_only))) == []
    assert glue_only_violations("x.md", chapter(("tags: [hide-cell]\n", glue_only))) != []


def test_equation_link_checker():
    math = "$$\nx\n$$ (eq-mu)\n\n$$y$$ (eq-y)\nBy (eq-mu) and {eq}`eq-mu`.\n"
    text = chapter(("", "s = '(eq-mu)'\n"), prose_text=math)
    assert equation_text_violations("x.md", text) == ["x.md:11: raw equation reference (eq-mu); write {eq}`eq-mu`"]
