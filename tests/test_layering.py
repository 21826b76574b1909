"""Imports inside graphplat only go downward through the layers, and no modules import each
other in a cycle (parsed with ast: module-level and function-level imports alike; imports
under ``if TYPE_CHECKING:`` (annotations) and ``if __name__ == "__main__":`` (a script's
entry point, never run on import) do not count)."""
import ast
import pathlib

import graphplat

ROOT = pathlib.Path(graphplat.__file__).parent

# Lower layers first; a module may import its own layer or any lower one. The package facade
# (graphplat/__init__.py: open_graph, connect, ...) sits on top with cli and testing: library
# modules import the defining module instead (``from graphplat import _core`` and
# ``__version__`` are the C extension and a constant, not the facade).
LAYERS = [
    {"_core", "proto", "typing", "errors", "atomic", "buffers", "schema"},
    {"service"},
    {"rpc", "storage"},
    {"sampling", "datasets"},  # datasets: readers that build GraphArrays / stores (storage)
    {"models"},
    {"training", "inference"},
    {"distributed"},
    {"serving"},
    {"cli", "testing", "graphplat"},  # testing: real servers for tests and users
]
LAYER_OF = {area: i for i, areas in enumerate(LAYERS) for area in areas}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree):
    skip = set()
    for node in ast.walk(tree):
        # annotations only, and a module's own script entry point (never runs on import)
        if isinstance(node, ast.If) and ("TYPE_CHECKING" in ast.unparse(node.test)
                                         or "__name__ == '__main__'" in ast.unparse(node.test)):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("graphplat"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "graphplat":
            if node.module == "graphplat":
                for alias in node.names:
                    yield node.lineno, f"graphplat.{alias.name}"
            else:
                yield node.lineno, node.module


def _graph():
    modules = {_module_name(p): p for p in ROOT.rglob("*.py") if "proto" not in p.parts}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for lineno, target in _imports(path):
            if target.startswith(("graphplat._core", "graphplat.proto", "graphplat.__version__")):
                target = ".".join(target.split(".")[:2])  # the extension, generated stubs, version
            while target not in modules and "." in target and not target.startswith(
                    ("graphplat._core", "graphplat.proto", "graphplat.__version__")):
                target = target.rsplit(".", 1)[0]  # from graphplat.x import name -> graphplat.x
            targets.add((lineno, target))
        edges[name] = targets
    return modules, edges


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "graphplat"


def test_every_area_has_a_layer():
    modules, _ = _graph()
    areas = {_area(m) for m in modules} - {"graphplat", "__main__"}
    assert areas <= set(LAYER_OF), sorted(areas - set(LAYER_OF))


def test_imports_only_go_downward():
    modules, edges = _graph()
    bad = []
    for src, targets in edges.items():
        if _area(src) == "graphplat":  # the facade itself
            continue
        for lineno, dst in targets:
            if dst in ("graphplat._core", "graphplat.__version__"):
                continue
            if LAYER_OF[_area(dst)] > LAYER_OF[_area(src)]:
                bad.append(f"{src}:{lineno} -> {dst}")
    assert bad == []


def test_no_import_cycles():
    modules, edges = _graph()
    graph = {m: {d for _, d in edges[m] if d in modules and d != m and d != "graphplat"}
             for m in modules}
    # a package's __init__ runs before its submodules; importing the package from one of its
    # submodules is a cycle too, so packages stay as nodes
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == []
