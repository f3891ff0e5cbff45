"""Rules of the code base's shape, read from the source with ``ast`` (nothing here imports the packages).

* ``plumbing`` (generic helpers) imports neither ``codec`` nor ``semantilm``;
* ``codec`` knows nothing about language models: no module of ``codec/`` or ``tests/codec/`` imports
  ``semantilm``;
* the modules of ``codec`` and ``semantilm`` import each other without cycles;
* ``semantilm`` takes the codec through its public face: ``codec`` itself and the modules that
  ``codec.PUBLIC_MODULES`` names;
* files stay under 400 lines and functions under 80, and no public function takes more than 10
  parameters (settings objects instead of long lists).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plumbing", "codec", "semantilm")
SIZED_FOLDERS = ("plumbing", "codec", "semantilm", "benchmarks", "recipes")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of the ``if TYPE_CHECKING:`` blocks of a module (imports there are for type checkers only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
            for child in node.body:
                lines |= set(range(child.lineno, child.end_lineno + 1))
    return lines


def imported_names(path: Path) -> list[tuple[int, str, list[str]]]:
    """Every import statement of a file, at any depth: (line, module, names taken from it).

    ``import a.b`` gives ``("a.b", [])``; ``from a.b import c, d`` gives ``("a.b", ["c", "d"])``;
    relative imports are resolved against the file's package.
    """
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def import_graph(runtime_only: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from package import module`` counts as the module).

    runtime_only: leave out imports in ``if TYPE_CHECKING:`` blocks.
    """
    files = {module_name(p): p for folder in PACKAGES for p in python_files(folder)}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        typing_only = type_checking_lines(parse(path)) if runtime_only else set()
        for line, module, names in imported_names(path):
            if line in typing_only:
                continue
            targets = [f"{module}.{n}" if f"{module}.{n}" in files else module for n in names] or [module]
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as the list of its modules, first repeated at the end) per strongly connected
    component of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [cycle_through(graph, component) for component in components]


def cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")  # pragma: no cover


def test_codec_does_not_import_semantilm():
    offenders = []
    for folder in ("codec", "tests/codec"):
        for path in python_files(folder):
            for line, module, _ in imported_names(path):
                if module == "semantilm" or module.startswith("semantilm."):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, "codec must not depend on semantilm:\n" + "\n".join(offenders)


def test_plumbing_knows_neither_package():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for path in python_files("plumbing") for line, module, _ in imported_names(path)
                 if module.split(".")[0] in ("codec", "semantilm")]
    assert not offenders, "plumbing holds generic helpers only:\n" + "\n".join(offenders)


def public_codec_modules() -> set[str]:
    """``codec.PUBLIC_MODULES``, read from ``codec/__init__.py``."""
    for node in parse(ROOT / "codec" / "__init__.py").body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PUBLIC_MODULES" for t in node.targets):
            return {"codec", *ast.literal_eval(node.value)}
    raise AssertionError("codec/__init__.py defines no PUBLIC_MODULES")


def test_semantilm_takes_the_codec_through_its_public_face():
    public = public_codec_modules()
    inside = []
    for path in python_files("semantilm"):
        for line, module, _ in imported_names(path):
            if (module == "codec" or module.startswith("codec.")) and module not in public:
                inside.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not inside, ("semantilm reaches into the codec; use codec's exports or a module of "
                        "codec.PUBLIC_MODULES:\n" + "\n".join(inside))


def test_package_imports_have_no_cycles():
    graph = import_graph()
    assert "semantilm.cli.main" in graph["semantilm.cli"] and "codec.model" in graph  # the graph is read
    runtime = import_graph(runtime_only=True)
    cycles = find_cycles(graph)

    def show(cycle: list[str]) -> str:
        steps = [cycle[0]]
        for a, b in zip(cycle, cycle[1:]):
            steps.append(b if b in runtime[a] else f"(TYPE_CHECKING) {b}")
        return " -> ".join(steps)

    assert not cycles, "import cycles:\n" + "\n".join(show(c) for c in cycles)


def test_find_cycles_reports_the_modules_of_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_files_and_functions_stay_small():
    long_files, long_functions = [], []
    for folder in SIZED_FOLDERS:
        for path in python_files(folder):
            where = path.relative_to(ROOT)
            lines = len(path.read_text().splitlines())
            if lines > MAX_FILE_LINES:
                long_files.append(f"{where}: {lines} lines")
            for node in ast.walk(parse(path)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long_functions.append(f"{where}:{node.lineno} {node.name}(): {length} lines")
    report = []
    if long_files:
        report += [f"files over {MAX_FILE_LINES} lines:", *long_files]
    if long_functions:
        report += [f"functions over {MAX_FUNCTION_LINES} lines:", *long_functions]
    assert not report, "\n".join(report)


MAX_PUBLIC_PARAMETERS = 10


def test_public_functions_take_settings_objects_not_long_lists():
    """A public function (or method) takes at most 10 parameters, ``self`` / ``cls`` not counted:
    longer lists go into settings objects (``SamplingSettings``, ``LMSpeed``, ``DecodeSettings``)."""
    wide = []
    for folder in PACKAGES:
        for path in python_files(folder):
            for node in ast.walk(parse(path)):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
                    continue
                args = node.args
                named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                count = len(named) - (1 if named and named[0].arg in ("self", "cls") else 0)
                if count > MAX_PUBLIC_PARAMETERS:
                    wide.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {count} parameters")
    assert not wide, f"public functions over {MAX_PUBLIC_PARAMETERS} parameters:\n" + "\n".join(wide)
