"""House rules that keep the architecture open: engines never ask which spec class they were given,
and the modules of numerics import each other one way only (lazy imports included)."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC_CHECK = re.compile(r"isinstance\([^)]*(MLP|ResNet|CNN|ResCNN)")


# numerics/reference.py is the deliberately independent conv route the claims check the engines
# against: it reads CNN / ResCNN fields directly instead of interpreting the kernel maps, so that an
# error in the maps or their lowering cannot hide in both routes.
INDEPENDENT_ROUTES = {"numerics/reference.py"}


def test_no_spec_class_checks_outside_theory_arch():
    bad = [f"{p.relative_to(ROOT)}:{i}" for folder in ("numerics", "proofs_check")
           for p in (ROOT / folder).rglob("*.py") if str(p.relative_to(ROOT)) not in INDEPENDENT_ROUTES
           for i, line in enumerate(p.read_text().splitlines(), 1) if SPEC_CHECK.search(line)]
    assert not bad, bad


def _numerics_imports():
    graph = {}
    for p in (ROOT / "numerics").glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
                elif node.module and node.module.startswith("reskernels.numerics."):
                    deps.add(node.module.split(".")[2])
        graph[p.stem] = deps - {p.stem}
    return graph


def test_no_import_cycle_inside_numerics():
    graph = _numerics_imports()

    def reach(a):
        seen, todo = set(), list(graph.get(a, ()))
        while todo:
            b = todo.pop()
            if b not in seen:
                seen.add(b)
                todo += graph.get(b, ())
        return seen
    cycles = [a for a in graph if a in reach(a)]
    assert not cycles, {a: sorted(graph[a]) for a in cycles}
    assert "conv" in graph["gram"] and "gram" not in reach("conv")
