"""Code beside the math: under each labelled equation of the book, the package functions that implement it.

A function or method whose docstring names an equation label (``eq-window``, ``eq-mu``, ...) implements that
equation; the book's convention is to cite the label in the docstring (``(eq-window)``). :func:`implementations`
collects them from the package itself, and the Sphinx extension (``setup``, listed in ``_config.yml``) places each
one's source, collapsed, under the equation that carries the label. What the reader sees is the code the tests run:
the source is read from the installed package when the book builds, never copied into a chapter.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

LABEL = re.compile(r"\beq-[a-z0-9]+(?:-[a-z0-9]+)*")
# Modules whose functions cite equation labels without implementing them: figure helpers draw an equation's curves.
NOT_IMPLEMENTING = ("learnability.plots",)


@dataclass(frozen=True)
class Implementation:
    """One function implementing an equation: ``name`` (dotted, from the package), ``path`` (the file, relative to
    the package's parent folder), ``line`` (its first line there) and ``source``."""

    name: str
    path: str
    line: int
    source: str


def _functions(module) -> list[tuple[str, object]]:
    """(qualified name, function) for the functions and the methods of the classes defined in ``module``."""
    out = []
    for name, obj in vars(module).items():
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            out.append((name, obj))
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            out.extend(
                (f"{name}.{method}", function) for method, function in vars(obj).items() if inspect.isfunction(function)
            )
    return out


def implementations(package: str = "learnability") -> dict[str, list[Implementation]]:
    """{equation label: the functions and methods of ``package`` whose docstrings name it}, each list in module
    order. Module and class docstrings do not count: they describe, a function implements; nor do the modules of
    ``NOT_IMPLEMENTING`` (figure helpers)."""
    root = importlib.import_module(package)
    base = Path(root.__file__).resolve().parent.parent
    found: dict[str, list[Implementation]] = {}
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    for module_name in (n for n in names if n not in NOT_IMPLEMENTING):
        module = importlib.import_module(module_name)
        for qualname, function in _functions(module):
            labels = sorted(set(LABEL.findall(function.__doc__ or "")))
            if not labels:
                continue
            lines, first = inspect.getsourcelines(function)
            path = Path(inspect.getsourcefile(function)).resolve().relative_to(base)
            source = textwrap.dedent("".join(lines))
            item = Implementation(f"{module_name}.{qualname}", str(path), first, source.rstrip("\n"))
            for label in labels:
                found.setdefault(label, []).append(item)
    return found


def code_nodes(items: list[Implementation]):
    """A collapsed admonition (sphinx-togglebutton's ``dropdown``) titled with the functions' names, holding each
    one's file, line and source."""
    from docutils import nodes

    box = nodes.admonition(classes=["dropdown", "code-beside-math"])
    short = ", ".join(item.name.removeprefix("learnability.") for item in items)
    box += nodes.title(text=f"Code: {short}")
    for item in items:
        where = nodes.paragraph()
        where += nodes.literal(text=item.name)
        where += nodes.Text(f" — {item.path}, line {item.line}")
        box += where
        box += nodes.literal_block(item.source, item.source, language="python")
    return box


def insert_code(app, doctree) -> None:
    """doctree-read: after every labelled equation with implementations, its collapsed code."""
    from docutils import nodes

    found = app.env.learnability_implementations
    for block in list(doctree.findall(nodes.math_block)):
        label = block.get("label")
        if label in found:
            block.parent.insert(block.parent.index(block) + 1, code_nodes(found[label]))


def setup(app) -> dict:
    """The Sphinx extension: collect :func:`implementations` once per build, insert them under the equations."""

    def collect(app_) -> None:
        app_.env.learnability_implementations = implementations()

    app.connect("builder-inited", collect)
    app.connect("doctree-read", insert_code)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
