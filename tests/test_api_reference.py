"""The API page: docstrings read as the book writes them, and every module of the package on the page."""

import pkgutil
from pathlib import Path

import learnability
from learnability.support.api_reference import MODULES, rest_docstring

ROOT = Path(__file__).resolve().parents[1]


def test_docstring_markup_is_escaped_and_equation_labels_link():
    assert rest_docstring("Returns |v|^2 and a*b for name_ (eq-window).") == (
        r"Returns \|v\|^2 and a\*b for name\_ (:eq:`eq-window`)."
    )
    assert rest_docstring("x_t and snake_case stay") == "x_t and snake_case stay"
    kept = "``|u|_1`` and :func:`learnability.window.sample_complexity` as written, eq-mu linked"
    assert rest_docstring(kept) == kept.replace("eq-mu", ":eq:`eq-mu`")
    assert rest_docstring("* a bullet with |x|") == r"* a bullet with \|x\|"
    assert rest_docstring(r"a \ b") == r"a \\ b"


def test_every_module_of_the_package_is_on_the_api_page():
    modules = {
        m.name.split(".", 1)[1]
        for m in pkgutil.walk_packages(learnability.__path__, "learnability.")
        if not m.ispkg and not m.name.startswith(("learnability.experiments.", "learnability.data."))
    }
    assert modules == set(MODULES)
    page = (ROOT / "book" / "api.md").read_text()
    assert [line.split("learnability.", 1)[1] for line in page.splitlines() if "automodule::" in line] == list(MODULES)
