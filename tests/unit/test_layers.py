"""The libraries stand alone: an import arrow from a library to the daemon, or from nodectl to
the store or the coordinator, fails here.

The imports are read from the source (ast), every one of them: top-level, inside functions
(a lazy import is still an arrow) and under TYPE_CHECKING (a type the library cannot name
without the daemon is an arrow too).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nodeagent", "runtime", "netns", "probes")

LIBRARIES = ("runtime", "netns", "probes", "nodeagent.raft", "nodeagent.gossip", "nodeagent.store",
             "nodeagent.objects")
DAEMON = ("nodeagent.agent", "nodeagent.config", "nodeagent.coordinator", "nodeagent.podmanager",
          "nodeagent.api", "nodeagent.cli")
# The launcher runs sandbox set-up, but is handed it (runtime.cli wires the two together).
RUNTIME_MAY_NOT = ("netns",)
NODECTL = "nodeagent.cli.nodectl"
NODECTL_MAY_NOT = ("nodeagent.store", "nodeagent.coordinator", "nodeagent.raft", "nodeagent.agent")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every project module this module's source names in an import."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import mod" imports the module pkg.mod when there is one
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
    found.discard(name)
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_module_discovery_sees_the_tree() -> None:
    """Guard the guard: a test that reads no modules passes vacuously."""
    assert "nodeagent.gossip.member" in MODULES and "runtime.launcher" in MODULES
    assert "nodeagent.config" in _imports("nodeagent.agent")


def test_libraries_import_nothing_of_the_daemon() -> None:
    arrows = sorted(f"{name} -> {target}" for name in MODULES if _within(name, LIBRARIES)
                    for target in _imports(name) if _within(target, DAEMON))
    assert arrows == [], "libraries import the daemon:\n" + "\n".join(arrows)


def test_runtime_is_handed_the_sandbox() -> None:
    arrows = sorted(f"{name} -> {target}" for name in MODULES
                    if _within(name, ("runtime",)) and name != "runtime.cli"
                    for target in _imports(name) if _within(target, RUNTIME_MAY_NOT))
    assert arrows == [], "the runtime imports the network code:\n" + "\n".join(arrows)


def test_nodectl_loads_neither_store_nor_coordinator() -> None:
    seen: dict[str, str] = {NODECTL: ""}
    todo = [NODECTL]
    while todo:
        name = todo.pop()
        for target in _imports(name):
            if target not in seen:
                seen[target] = name
                todo.append(target)
    bad = []
    for target in sorted(seen):
        if _within(target, NODECTL_MAY_NOT):
            chain, at = [target], target
            while seen[at]:
                at = seen[at]
                chain.append(at)
            bad.append(" <- ".join(chain))
    assert bad == [], "nodectl loads:\n" + "\n".join(bad)


def test_node_and_cluster_sides_share_through_the_objects() -> None:
    """The pod manager (node side) and the coordinator (cluster side) both need pod helpers;
    they live in nodeagent.objects, and neither side imports the other."""
    sides = ("nodeagent.podmanager", "nodeagent.coordinator")
    arrows = sorted(f"{name} -> {target}" for name in MODULES for a, b in (sides, sides[::-1])
                    if _within(name, (a,)) for target in _imports(name) if _within(target, (b,)))
    assert arrows == [], "node and cluster sides import each other:\n" + "\n".join(arrows)
