"""The package's layout: no import cycles between its modules, and the README's layout names every module."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "learnability"


def module_name(path: Path) -> str:
    """``learnability.x.y`` for ``src/learnability/x/y.py`` (a package's ``__init__.py`` is the package)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere (module level or inside functions): ``from a import b``
    counts ``a.b`` when that is a module, else ``a``; relative imports are resolved against the file's package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes, first == last), or None when it is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycles():
    modules = package_modules()
    graph = {name: imported_modules(path, set(modules)) for name, path in modules.items()}
    # a package's __init__ imported by its own submodules (e.g. ``from . import Preset``) is not a cycle through code
    # that runs twice, but it is still a cycle of the graph, so it is not exempted: there is none.
    assert sum(len(v) for v in graph.values()) > 50, "the import graph looks empty: is the parsing broken?"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_every_subpackage_says_what_it_holds():
    for init in PACKAGE.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init.relative_to(ROOT)} has no docstring"


def test_readme_layout_names_every_module():
    """The README's layout block lists each module under its folder (``name.py`` on an indented line)."""
    block = re.search(r"## Layout\n+```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    listed = set(re.findall(r"([\w/]+\.py)", block))
    missing = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and rel.parent != Path("."):
            if f"{rel.parent}/" not in block:
                missing.append(f"{rel.parent}/")
        elif path.name != "__init__.py" and path.name not in listed and str(rel) not in listed:
            if rel.parent.name != "experiments":  # experiments/ is described as a whole
                missing.append(str(rel))
    assert not missing, f"README's layout does not name: {sorted(missing)}"
