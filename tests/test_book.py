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
