"""Code beside the math: the functions that implement each equation, found from their docstrings, and their
insertion under the equation in a doctree."""

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

from docutils import nodes
from docutils.utils import new_document

from learnability import plots, window
from learnability.support.code_beside_math import code_nodes, implementations, insert_code

ROOT = Path(__file__).resolve().parents[1]


def book_equation_labels() -> set[str]:
    return {
        m for path in (ROOT / "book").glob("*.md") for m in re.findall(r"\$\$\s*\((eq-[a-z0-9-]+)\)", path.read_text())
    }


def test_implementations_are_the_functions_whose_docstrings_name_the_label():
    found = implementations()
    by_name = {item.name: item for item in found["eq-window"]}
    item = by_name["learnability.window.learnability_window"]
    lines, first = inspect.getsourcelines(window.learnability_window)
    assert item.source == "".join(lines).rstrip("\n") and item.line == first
    assert item.path == "learnability/window.py"
    method = {i.name: i for i in found["eq-jac-diagonal"]}["learnability.cells.Cell.jacobian_diagonal"]
    assert method.source.startswith("def jacobian_diagonal(self")  # dedented, body indentation kept
    assert "\n    return torch.diagonal" in method.source
    assert plots.measured_windows.__doc__ and "eq-window" in plots.measured_windows.__doc__
    assert not any(i.name.startswith("learnability.plots.") for items in found.values() for i in items)
    cited = set(found)
    assert cited <= book_equation_labels(), (
        f"docstrings cite labels the book does not define: {cited - book_equation_labels()}"
    )
    assert len(cited) >= 0.8 * len(book_equation_labels())  # most equations show their code


def test_insert_code_puts_a_collapsed_box_after_each_labelled_equation():
    document = new_document("test")
    section = nodes.section()
    known = nodes.math_block("H_N", "H_N", label="eq-window")
    other = nodes.math_block("x", "x", label="eq-nobody-implements-this")
    section += [known, nodes.paragraph(text="after"), other]
    document += section
    found = implementations()
    insert_code(SimpleNamespace(env=SimpleNamespace(learnability_implementations=found)), document)
    kinds = [type(child).__name__ for child in section.children]
    assert kinds == ["math_block", "admonition", "paragraph", "math_block"]
    box = section.children[1]
    assert "dropdown" in box["classes"] and box.children[0].astext().startswith("Code: ")
    assert "window.learnability_window" in box.children[0].astext()
    sources = [child.astext() for child in box.findall(nodes.literal_block)]
    assert sources == [item.source for item in found["eq-window"]]
    assert code_nodes(found["eq-window"]).astext() == box.astext()
