"""The package's layers are one-way (README "Layers"): every import, including imports inside
functions, goes from a higher layer to a lower one, and no modules import each other in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import otgen

ROOT = Path(otgen.__file__).parent

# Lowest first. A subpackage may import its own modules and any subpackage of a lower tier,
# never one of its own tier or above.
TIERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("__init__",),  # otgen/__init__.py: the version and OTGenError only
    ("utils",),
    ("ot",),
    ("data", "viz"),
    ("nets",),
    ("metrics",),
    ("methods",),
    ("engine",),
    ("reproduce",),
    ("commands",),
    ("cli",),
    ("__main__",),
)
RANK = {name: i for i, tier in enumerate(TIERS) for name in tier}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The longest known module that ``name`` (``pkg.mod.attr``) refers to."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    """otgen modules imported anywhere in ``path`` (module level and inside functions)."""
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t == "otgen" or t.startswith("otgen."):
                found.add(_resolve(t, known))
    found.discard(mod)
    return found


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {mod: _imports(mod, path, known) for mod, path in known.items()}


def test_every_subpackage_has_a_layer():
    missing = {_layer(m) for m in _modules()} - set(RANK)
    assert not missing, f"add these to TIERS (and README's Layers): {sorted(missing)}"


def test_no_import_goes_up_or_sideways():
    bad = []
    for mod, deps in _graph().items():
        for dep in deps:
            a, b = _layer(mod), _layer(dep)
            if a != b and RANK[b] >= RANK[a]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among modules (a package's import of its own submodules included)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def _without_parent_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop ``pkg.mod -> pkg`` (a submodule importing its own package's ``__init__``).

    Python imports a package's ``__init__`` before any of its submodules anyway, so such an
    edge is only a cycle when ``__init__`` itself re-imports the submodule; that case is kept.
    """
    out = {}
    for mod, deps in graph.items():
        out[mod] = {d for d in deps if not (mod.startswith(d + ".") and mod not in graph[d])}
    return out


def test_no_import_cycles():
    cycle = _cycle(_without_parent_edges(_graph()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
