"""No import circles in our packages: no module imports (even only for type checking, or inside a function) a
module that imports it back; randomization imports nothing of ours, policies never sim, calibration never policies
or the ROS side, nothing imports sim2real."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Package -> the folder that holds it.
PACKAGES = {
    "sim": ROOT,
    "randomization": ROOT,
    "policies": ROOT,
    "calibration": ROOT,
    "sim2real": ROOT,
    "sim2real_ros": ROOT / "ros_ws" / "src" / "sim2real_ros",
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, parent in PACKAGES.items():
        for f in sorted((parent / pkg).rglob("*.py")):
            parts = f.relative_to(parent).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules `name` imports anywhere in its source (`from a import b` counts `a.b` when b is one)."""

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        return next((m for k in range(len(parts), 0, -1) if (m := ".".join(parts[:k])) in known), None)

    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(resolve(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.update(resolve(f"{base}.{a.name}") or resolve(base) for a in node.names)
    return {m for m in found if m is not None and m != name}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    assert "sim.randomized" in graph["sim.tasks.base"]  # the graph sees the imports
    circles = {m: sorted(d for d in graph[m] if m in _reaches(graph, d)) for m in graph}
    assert {m: c for m, c in circles.items() if c} == {}


def test_the_randomizer_does_not_import_the_tasks() -> None:
    graph = _graph()
    assert not any(m.startswith("sim.tasks") for m in _reaches(graph, "sim.randomized"))


def test_randomization_imports_nothing_of_sim() -> None:
    graph = _graph()
    assert {
        m: sorted(graph[m])
        for m in graph
        if m.startswith("randomization") and any(d.startswith("sim") for d in graph[m])
    } == {}


def _offenders(graph: dict[str, set[str]], importer: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        m: sorted(d for d in deps if d.split(".")[0] in forbidden)
        for m, deps in graph.items()
        if m.split(".")[0] == importer and any(d.split(".")[0] in forbidden for d in deps)
    }


def test_the_import_rules_between_packages() -> None:
    graph = _graph()
    assert _offenders(graph, "randomization", ("sim", "policies", "sim2real", "sim2real_ros")) == {}
    assert _offenders(graph, "sim", ("policies", "sim2real", "sim2real_ros")) == {}
    assert _offenders(graph, "policies", ("sim", "calibration", "sim2real", "sim2real_ros")) == {}
    assert _offenders(graph, "calibration", ("policies", "sim2real", "sim2real_ros")) == {}  # no rclpy side either
    for pkg in ("sim", "randomization", "policies", "calibration", "sim2real_ros"):
        assert _offenders(graph, pkg, ("sim2real",)) == {}, pkg
    assert "calibration.fit" in graph and "sim2real_ros.recorder" in graph  # the graph sees every package
