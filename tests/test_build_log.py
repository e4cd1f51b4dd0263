"""Reading a Jupyter Book build log: failed cells located in the .md, warnings, excused cross-chapter references.
The log excerpts are cut from real one-page builds of book/extending.md (`learnability chapter extending --alone`),
colour codes included; only long traceback frames were left out."""

import subprocess
import sys
from pathlib import Path

import pytest
from myst_notebook import MYST_HEADER

from learnability.support.build_log import Problem, book_sources, code_cells, defined_targets, excusable, problems

ROOT = Path(__file__).resolve().parents[1]
REPO = "/home/reader/gated-learnability"
CHAPTER = f"{REPO}/book/extending.md"
E = "\x1b"

# extending.md, reduced to what the excerpts need: cell 2 and cell 4 have the same source, cell 4 failed (In[4])
SOURCE = (
    MYST_HEADER
    + """
# Extending the book

```{code-cell} ipython3
import numpy as np
```

```{code-cell} ipython3
settings = dict(hidden_size=16, T=80, batch=16, seed=0, Ns=np.logspace(2, 8, 13))
assert settings["T"] < 50, "T too long"
```

+++

Between the cells.

```{code-cell} ipython3
:tags: [hide-input]
x = 1
```

```{code-cell} ipython3
settings = dict(hidden_size=16, T=80, batch=16, seed=0, Ns=np.logspace(2, 8, 13))
assert settings["T"] < 50, "T too long"
```
"""
)

FAILED_CELL = f"""{E}[01mreading sources... {E}[39;49;00m[100%] {E}[35mextending{E}[39;49;00m
{CHAPTER}: Executing notebook using local CWD [mystnb]
[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication (including code and outputs)

{E}[91mException occurred:{E}[39;49;00m
  File "/work/main/.venv/lib/python3.11/site-packages/myst_nb/core/execute/direct.py", line 51, in start_client
    raise ExecutionError(str(self.path)) from result.err
myst_nb.core.execute.base.ExecutionError: {CHAPTER}
{E}[91mThe full traceback has been saved in /tmp/sphinx-err-6fu64ezk.log, if you want to report the issue.{E}[39;49;00m
Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/nbclient/client.py", line 918, in _check_raise_for_error
    raise CellExecutionError.from_cell_and_msg(cell, exec_reply_content)
nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:
------------------
settings = dict(hidden_size=16, T=80, batch=16, seed=0, Ns=np.logspace(2, 8, 13))
assert settings["T"] < 50, "T too long"
------------------


{E}[31m---------------------------------------------------------------------------{E}[39m
{E}[31mAssertionError{E}[39m                            Traceback (most recent call last)
{E}[36mCell{E}[39m{E}[36m {E}[39m{E}[32mIn[4]{E}[39m{E}[32m, line 2{E}[39m
{E}[32m      1{E}[39m settings = dict(hidden_size={E}[32m16{E}[39m, T={E}[32m80{E}[39m, batch={E}[32m16{E}[39m)
{E}[32m----> {E}[39m{E}[32m2{E}[39m {E}[38;5;28;01massert{E}[39;00m settings[{E}[33m"T"{E}[39m] < {E}[32m50{E}[39m

{E}[31mAssertionError{E}[39m: T too long


The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/myst_nb/core/execute/direct.py", line 51, in start_client
    raise ExecutionError(str(self.path)) from result.err
myst_nb.core.execute.base.ExecutionError: {CHAPTER}
"""

GLUE_TYPO = f"""{CHAPTER}: Executed notebook in 16.93 seconds [mystnb]
{E}[91m{CHAPTER}:12: WARNING: No key 'nonexistent-name' found in glue data for this document. (use `path::key`, \
to glue from another document) [mystnb.glue]{E}[39;49;00m

{E}[01mwriting output... {E}[39;49;00m[100%] {E}[32mextending{E}[39;49;00m

{E}[91m{CHAPTER}:12: WARNING: could not find bibtex key "zhou2016mgu"{E}[39;49;00m
{E}[91m{CHAPTER}:12: WARNING: equation not found: eq-mu{E}[39;49;00m
{E}[91m{REPO}/book/extending.rst: WARNING: label 'thm-regimes' not found.{E}[39;49;00m
{E}[91m{CHAPTER}:134: WARNING: prf:ref reference target not found: thm-regimes{E}[39;49;00m
{E}[01mbuild succeeded, 5 warnings.{E}[39;49;00m
"""

# What other chapters and references.bib define, in their own syntax
OTHER_CHAPTER = """(ch-effective-lr)=
# Effective learning rates

$$
\\mu_\\ell = \\eta\\,\\|J\\|
$$ (eq-mu)

:::{prf:theorem} Decay regimes
:label: thm-regimes
:::

```{glue:figure} fig
:name: fig-envelope
```
"""
BIB = "@article{zhou2016mgu,\n  title = {Minimal gated unit},\n}\n@book{other2020,\n}\n"


def test_a_failed_cell_is_located_at_its_code_cell_line_with_the_exception():
    found = problems(FAILED_CELL, {CHAPTER: SOURCE})
    fence = SOURCE.splitlines().index("```{code-cell} ipython3", 24) + 1  # the fourth cell (In[4]), not the second
    assert fence == 27
    assert found == [Problem(CHAPTER, 27, "code cell failed (its line 2): AssertionError: T too long")]
    assert found[0].located(Path(REPO)) == (
        "book/extending.md:27: code cell failed (its line 2): AssertionError: T too long"
    )
    unlocated = problems(FAILED_CELL, {})  # the chapter's source not at hand
    assert unlocated == [Problem(CHAPTER, None, "code cell failed (its line 2): AssertionError: T too long")]


def test_a_glue_typo_is_a_problem_and_only_references_to_other_chapters_are_excused():
    found = problems(GLUE_TYPO, {CHAPTER: SOURCE})
    assert [(p.file, p.line) for p in found] == [(CHAPTER, 12)] * 3 + [
        (f"{REPO}/book/extending.rst", None),
        (CHAPTER, 134),
    ]
    assert found[0].text.startswith("WARNING: No key 'nonexistent-name' found in glue data")
    elsewhere = defined_targets([OTHER_CHAPTER], [BIB], ["p1_jacobians"])
    assert elsewhere == {
        "ch-effective-lr",
        "eq-mu",
        "thm-regimes",
        "fig-envelope",
        "zhou2016mgu",
        "other2020",
        "p1_jacobians",
    }
    assert [excusable(p, elsewhere) for p in found] == [False, True, True, True, True]
    assert not any(excusable(p, set()) for p in found)  # the whole book: nothing is excused
    typo = Problem(CHAPTER, 3, 'WARNING: could not find bibtex key "zhou2016mg"')
    assert not excusable(typo, elsewhere)  # a key in no .bib is a real problem
    assert not excusable(Problem(CHAPTER, 3, "ERROR: undefined label: 'eq-mu'"), elsewhere)


def test_a_build_stopped_by_an_error_that_is_not_a_cell():
    log = (
        f"{E}[01mmaking output directory... {E}[39;49;00mdone\n\n{E}[91mExtension error:{E}[39;49;00m\n"
        "You must configure the bibtex_bibfiles setting\nTraceback (most recent call last):\n"
    )
    assert problems(log, {}) == [
        Problem(None, None, "the build stopped: You must configure the bibtex_bibfiles setting")
    ]
    assert problems(GLUE_TYPO.replace("WARNING", "INFO"), {}) == []


def test_code_cells_point_at_the_code_cell_fences_of_every_chapter():
    for path in sorted((ROOT / "book").glob("*.md")):
        lines = path.read_text().splitlines()
        cells = code_cells(path.read_text())
        fences = [i + 1 for i, line in enumerate(lines) if line.startswith("```{code-cell}")]
        assert [line for line, _ in cells] == fences, path.name
        for line, source in cells:  # the source ends where that fence closes
            close = lines.index("```", line)
            assert lines[close - len(source.splitlines()) : close] == source.splitlines(), (path.name, line)
    with pytest.raises(ValueError, match="not a readable MyST notebook"):
        code_cells("```{code-cell} ipython3\n:tags: [unclosed\nx = 1\n```\n")
    with pytest.raises(ValueError, match="no book/ folder"):
        book_sources(ROOT / "tests")


def test_build_log_module_prints_the_summary_of_a_failed_build(tmp_path):
    log = tmp_path / "build.log"
    chapter = tmp_path / "book" / "extending.md"
    chapter.parent.mkdir()
    chapter.write_text(SOURCE)
    log.write_text(FAILED_CELL.replace(CHAPTER, str(chapter)))
    cmd = [sys.executable, "-m", "learnability.support.build_log", str(log)]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert out.stdout.strip().splitlines() == [
        "1 problem in the build:",
        "  book/extending.md:27: code cell failed (its line 2): AssertionError: T too long",
    ]
    log.write_text("build succeeded.\n")
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "no warning, error or failed cell found" in out.stdout
    out = subprocess.run(cmd[:-1] + [str(tmp_path / "missing.log")], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "no log file" in out.stderr
