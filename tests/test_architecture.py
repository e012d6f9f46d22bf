"""The package's shape, enforced: no import cycle, small modules, light plugins, deploy clients in deploy."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from support import REPO

BACKENDS = REPO / "backends"
# The query-language models mirror a vendor's whole language and may be long.
MODELS = {"r53sigma.targets.cloudwatch.insights_model", "r53sigma.targets.elasticsearch.esql_model",
          "r53sigma.targets.splunk.spl_model"}
AWAITING_SPLIT: set[str] = set()  # the scan engines are split by stage now (backends/r53sigma/scan/)
MAX_LINES = 600
DEPLOY_CLIENTS = {"elasticsearch", "elastic_transport", "splunklib", "boto3", "botocore"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in BACKENDS.rglob("*.py"):
        if "__pycache__" in path.parts or any(p.endswith(".egg-info") for p in path.parts):
            continue
        parts = list(path.relative_to(BACKENDS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module (of ours or not) that ``name`` imports, anywhere in the file (functions and
    TYPE_CHECKING blocks included: a cycle hidden in a function is still a cycle of design)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "r53sigma.package" in graph and graph["r53sigma.package"], "the graph was not built"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_600_lines_outside_the_models():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) - MODELS - AWAITING_SPLIT == set(), long


# The data loaders a plugin may use: the field catalogue and the IOC domain list (%ioc_domains%).
PLUGIN_LOADERS = {"r53sigma.catalogue", "r53sigma.ioc"}


def test_the_pysigma_plugins_depend_only_on_the_catalogue_loader():
    graph = _graph()
    for plugin in ("sigma.pipelines.route53", "sigma.backends.cloudwatch"):
        ours = {m for m in _reachable(graph, plugin) if m.split(".")[0] == "r53sigma"}
        assert ours <= PLUGIN_LOADERS, (plugin, ours)
    modules = _modules()
    for loader in PLUGIN_LOADERS:
        loader_imports = _imports(loader, modules[loader], modules)
        assert not {m for m in loader_imports if m.startswith("r53sigma")}, loader_imports


def test_only_deploy_modules_import_the_deploy_clients():
    modules = _modules()
    for name, path in modules.items():
        clients = {m.split(".")[0] for m in _imports(name, path, modules)} & DEPLOY_CLIENTS
        assert not clients or name.startswith("r53sigma.deploy."), (name, clients)


def test_the_cli_and_every_target_load_without_the_deploy_clients():
    code = ("import sys\nfrom r53sigma import cli, conversion, package, verify\nfrom r53sigma.targets import registry\n"
            "for t in registry.all_targets().values(): pass\n"
            "print(sorted(m for m in {clients!r} if m in sys.modules))").format(clients=DEPLOY_CLIENTS)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_every_module_says_what_it_is_for():
    missing = [name for name, path in _modules().items()
               if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == [], missing
