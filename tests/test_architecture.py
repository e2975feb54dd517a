"""The import graph: no cycle between modules, and every arrow between packages points down README's layers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crmlist"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], package_root: Path = PACKAGE) -> set[str]:
    """Every crmlist module `path` imports, at any depth (a late import inside a function counts too)."""
    name = module_name(path, package_root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from crmlist.ingest import load` imports the module ingest.load
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {m for m in found if m in modules and m != name}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in paths}
    return {module_name(p, root): imports_of(p, modules, root) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def readme_layers() -> list[set[str]]:
    """README.md's architecture picture: one line per layer, top first, `name, name  what they are`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    layers = []
    for line in block.splitlines():
        names = line.split("  ", 1)[0]
        layers.append({n.strip() for n in names.split(",")})
    return layers


def top_level(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "crmlist"


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_every_arrow_between_packages_points_down_readmes_layers() -> None:
    layers = readme_layers()
    level = {name: i for i, names in enumerate(layers) for name in names}
    graph = import_graph()
    placed = {top_level(m) for m in graph} - {"crmlist"}
    assert sorted(placed - set(level)) == [], "every package and top-level module has a layer in README.md"
    assert sorted(set(level) - placed) == [], "README.md's layers name only what exists"
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if top_level(module) != "crmlist"  # the package's own __init__ is the public API above everything
        and top_level(target) != "crmlist"
        and level[top_level(target)] <= level[top_level(module)]
        and top_level(target) != top_level(module)
    )
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_arrow(tmp_path: Path) -> None:
    package = tmp_path / "crmlist"
    (package / "ingest").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "ingest" / "__init__.py").write_text("", encoding="utf-8")
    (package / "ingest" / "readers.py").write_text(
        "def f():\n    from crmlist.ingest.records import g\n", encoding="utf-8"
    )
    (package / "ingest" / "records.py").write_text("from .readers import f\n", encoding="utf-8")
    (package / "store.py").write_text("from crmlist.ingest import readers\n", encoding="utf-8")
    graph = import_graph(package)
    assert cycles(graph) == [["crmlist.ingest.readers", "crmlist.ingest.records"]]
    assert graph["crmlist.store"] == {"crmlist.ingest.readers"}


def test_readme_picture_has_one_line_per_layer() -> None:
    layers = readme_layers()
    assert layers[:2] == [{"__main__"}, {"cli"}] and layers[-1] == {"errors"}
    names = [n for layer in layers for n in layer]
    assert len(names) == len(set(names)), "a package sits in one layer"
    assert all(re.fullmatch(r"[a-z_]+", n) for n in names)


def private_uses(path: Path) -> list[str]:
    """Private names of other packages a module uses: `from typer._click import X`, `frame._collect()`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = {  # a module's own private attributes (self._parts) may be read on another object of its class
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
    }
    found = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            if module.split(".")[0] not in ("crmlist", "__future__") and _private(module):
                found.append(f"{node.lineno}: {module}")
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own | PUBLIC:
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in ("self", "cls"):
                found.append(f"{node.lineno}: .{node.attr}")
    return found


# Public names that start with an underscore: os._exit, and namedtuple's methods (named so to avoid fields).
PUBLIC = {"_exit", "_replace", "_asdict", "_fields", "_make"}


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def test_no_private_api_of_a_dependency() -> None:
    uses = {str(p.relative_to(ROOT)): private_uses(p) for p in sorted(PACKAGE.rglob("*.py"))}
    assert {path: found for path, found in uses.items() if found} == {}


def test_the_private_api_check_sees_both_spellings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typer._click.utils import X\nimport click\ndef f(frame):\n    return frame._collect_as_arrow()\n"
        "class A:\n    def g(self, other):\n        return self._part, other._part, click.__name__, other._asdict()\n",
        encoding="utf-8",
    )
    assert private_uses(module) == ["1: typer._click.utils", "1: typer._click.utils.X", "4: ._collect_as_arrow"]
