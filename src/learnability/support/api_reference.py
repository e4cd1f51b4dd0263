"""The API reference page (book/api.md): Sphinx autodoc over the package, with the docstrings read as the book writes
them. Docstrings here are plain text with equations in ASCII (``|v|^2``, ``sum_k``); before reStructuredText reads
them, :func:`rest_docstring` escapes the characters it would take for markup (``|`` substitutions, ``*`` emphasis,
``name_`` targets) outside literals and roles, and turns each equation label (``eq-window``) into a link to the
equation (the ``eq`` role), so every function links to the equation it implements.
"""

from __future__ import annotations

import re

from .code_beside_math import LABEL

MODULES = (
    "cells",
    "symbolic",
    "fastpaths.fused",
    "extension",
    "gates.timescales",
    "transport",
    "fastpaths.tridiagonal",
    "effective_lr",
    "gates.analogies",
    "gates.anisotropy",
    "tasks",
    "training",
    "stable",
    "window",
    "spectra",
    "diagnostics",
    "window_analysis",
    "errata",
    "linear_dynamics",
    "integrate.reduced",
    "integrate.integrator_theory",
    "integrate.sampled_noise",
    "plots",
    "support.tables",
    "support.provenance",
    "support.benchmarks",
    "support.build_log",
    "support.code_beside_math",
    "support.api_reference",
    "cli",
)
"""The package's modules in the order of the page: cells, Part I, shared training, Part II, Part III, support."""

# ``literal`` and :role:`target` spans are left as they are; everything else is escaped
_KEEP = re.compile(r"``.+?``|:[a-z:]+:`[^`]+`")
_MARKUP = re.compile(r"([|*\\])|(?<=\w)_(?=\W|$)")


def _escape(text: str) -> str:
    """``text`` with reST's inline markup characters escaped and each equation label made an ``eq`` link."""
    text = _MARKUP.sub(lambda m: "\\" + m.group(0), text)
    return LABEL.sub(lambda m: f":eq:`{m.group(0)}`", text)


def rest_docstring(line: str) -> str:
    """One docstring line as reStructuredText: markup characters escaped and equation labels linked, except inside
    ``literal`` spans and roles (``:func:`x```), which stay as written."""
    bullet = re.match(r"\s*[*] ", line)  # a reST bullet stays one
    out, last = [bullet.group(0)] if bullet else [], bullet.end() if bullet else 0
    for keep in _KEEP.finditer(line, last):
        out.append(_escape(line[last : keep.start()]))
        out.append(keep.group(0))
        last = keep.end()
    out.append(_escape(line[last:]))
    return "".join(out)


def _process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """autodoc-process-docstring: every line through :func:`rest_docstring`, in place."""
    lines[:] = [rest_docstring(line) for line in lines]


def setup(app) -> dict:
    """The Sphinx extension: autodoc, signatures without type hints (the docstrings state shapes and types), and the
    docstring reading of :func:`rest_docstring`."""
    app.setup_extension("sphinx.ext.autodoc")
    app.config.autodoc_typehints = "none"
    app.config.autodoc_inherit_docstrings = False  # torch's own docstrings (nn.Module.forward) are not ours
    app.connect("autodoc-process-docstring", _process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
