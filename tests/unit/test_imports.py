"""fleet's import graph, read from the source: no circle between modules, and no arrow from the
generic core to a feature.

The graph is built with `ast` from every module under fleet/, so it sees every import a module
can make, whichever path through the code runs:

- imports at module level, inside functions (lazy imports are arrows all the same: they run when
  the function does) and under `if TYPE_CHECKING:`. Type-only imports count too: an annotation
  that names another module's class is a dependency of the design, mypy follows it, and a
  circle drawn only in annotations is still two modules that cannot be understood apart;
- `import a.b` is an arrow to the module a.b; `from a import b` is an arrow to the submodule a.b
  when there is one, else to a (whose `__init__` must then provide b); relative imports are
  resolved against the importing module's package;
- a package's `__init__` is a module like any other: `from fleet.inventory import FleetHost` is
  an arrow to fleet.inventory, whose re-exports are its own arrows to fleet.inventory.load.
  The parent packages Python runs before a submodule (fleet, fleet.x for fleet.x.y) are not
  arrows of their own: a package's `__init__` may import its children without that counting as
  a circle with every child.

A circle is a strongly connected component of more than one module, or a module importing itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "fleet"
CORE = "fleet.core"


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module under `root` by its dotted name (a package by its `__init__`)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """`name` if it is one of the modules, else the longest dotted prefix that is (a.b.C: a.b)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def arrows(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of `modules` that module `name` (at `path`) imports, anywhere in its text."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets: Iterable[str | None] = (_known(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = (f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else _known(base, modules)
                       for alias in node.names)
        else:
            continue
        found |= {target for target in targets if target is not None}
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: arrows(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    return sorted(c for c in strongly_connected(graph)
                  if len(c) > 1 or c[0] in graph[c[0]])


# The reader and the circle finder, checked on small trees before they judge fleet's.

def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_every_kind_of_import_is_an_arrow(tmp_path):
    package = write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from pkg.sub.leaf import VALUE\n",
        "pkg/sub/leaf.py": "VALUE = 1\n",
        "pkg/sub/sibling.py": "from . import leaf\nfrom .leaf import VALUE\n",
        "pkg/lazy.py": "def f():\n    import pkg.sub.leaf\n    return pkg.sub.leaf.VALUE\n",
        "pkg/typed.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                         "    from pkg.sub import VALUE\n"),
        "pkg/up.py": "from .sub import sibling\nfrom . import lazy\nimport os\n",
        "pkg/sub/deep.py": "from ..typed import TYPE_CHECKING\n",
    })
    graph = import_graph(package)
    assert graph == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.leaf"},                  # a re-export is an arrow
        "pkg.sub.leaf": set(),
        "pkg.sub.sibling": {"pkg.sub.leaf"},          # relative, both forms
        "pkg.lazy": {"pkg.sub.leaf"},                 # inside a function
        "pkg.typed": {"pkg.sub"},                     # under TYPE_CHECKING, through the package
        "pkg.up": {"pkg.sub.sibling", "pkg.lazy"},    # relative submodules; os is not ours
        "pkg.sub.deep": {"pkg.typed"},                # two levels up
    }


def test_a_circle_through_a_package_reexport_or_a_lazy_import_is_found(tmp_path):
    package = write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a/__init__.py": "from pkg.a.load import thing\n",
        "pkg/a/load.py": "def thing():\n    from pkg.b.source import other\n    return other\n",
        "pkg/b/__init__.py": "",
        "pkg/b/source.py": "from pkg.a import thing\nother = 1\n",
        "pkg/c.py": "import pkg.c\n",
        "pkg/d.py": "from pkg.a.load import thing\n",
    })
    assert circles(import_graph(package)) == [["pkg.a", "pkg.a.load", "pkg.b.source"], ["pkg.c"]]


# fleet itself.

def test_the_reader_sees_fleet_as_it_is():
    graph = import_graph()
    assert len(graph) > 90
    assert "fleet.core.results" in graph["fleet.mesh.verdict"]
    assert "fleet.inventory.load" in graph["fleet.inventory"]        # the package's re-exports
    assert "fleet.api" in graph["fleet"]                              # fleet.run, imported lazily
    assert "fleet.ssh.persist.wire" in graph["fleet.ssh.persist.client"]


def test_fleet_has_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles (each line: modules that import each other, directly or " \
        "not):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_core_imports_no_feature():
    graph = import_graph()
    core = [name for name in graph if name == CORE or name.startswith(CORE + ".")]
    assert len(core) >= 10
    outside = {name: sorted(t for t in graph[name] if t != CORE and not t.startswith(CORE + "."))
               for name in core}
    outside = {name: targets for name, targets in outside.items() if targets}
    assert not outside, outside


def test_the_isatap_maths_is_a_leaf_below_inventory_tunnel_and_mesh():
    graph = import_graph()
    assert graph["fleet.isatap"] == set()
    for feature in ("fleet.inventory.model", "fleet.tunnel.plan", "fleet.mesh.model"):
        assert "fleet.isatap" in graph[feature], feature
    for name, targets in graph.items():
        if name.startswith("fleet.mesh"):
            assert not {t for t in targets if t.startswith("fleet.tunnel")}, name
        if name.startswith("fleet.inventory"):
            assert not {t for t in targets if t.startswith(("fleet.tunnel", "fleet.aws"))}, name


def package_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """The same arrows between fleet's parts: each subpackage (fleet.mesh) and each top-level
    module (fleet.api, fleet.isatap) as one node."""
    def part(name: str) -> str:
        return ".".join(name.split(".")[:2])

    parts: dict[str, set[str]] = {}
    for name, targets in graph.items():
        parts.setdefault(part(name), set()).update(part(t) for t in targets if part(t) != part(name))
    return parts


def test_fleets_parts_have_no_import_circle_either():
    """No circle between subpackages: the inventory does not reach the tunnel that builds on it,
    even through modules that do not import each other."""
    found = circles(package_graph(import_graph()))
    assert not found, found
    assert package_graph({"fleet.a.x": {"fleet.b.y"}, "fleet.b.y": set(), "fleet.b.z": {"fleet.a"},
                          "fleet.a": set()}) == {"fleet.a": {"fleet.b"}, "fleet.b": {"fleet.a"}}
