"""A scan's compiled run, kept in the plan cache, so that a warm ``scan`` neither parses rules nor imports pySigma.

What the engines need to scan, once the rules are loaded and checked, is plain data: per rule its log
source, predicate SQL, whether SQL may leave a row unknown, and its match plan (what the reference engine
evaluates, :mod:`r53sigma.scan.predicates`); per correlation its plan (referenced rules,
group and value paths, span, condition); what alerts print (id, title, level, correlation type); the
messages the load and the checks printed, in order, and the exit status they set. :func:`build` takes that
from a cold run; :func:`restore` gives it back as stand-ins of the rules (:class:`CachedRule`,
:class:`CachedCorrelation`) that the engine and the correlation code use as they use pySigma's objects
(:mod:`r53sigma.scan.sigma_names`).

The key (:func:`run_key`) is a hash of every input that changes the run: the text of every rule file
the load may read (the files and folders given, their folders, the pack), the filter files, the
``%ioc_domains%`` list (``R53SIGMA_IOC_DOMAINS``, its file, ``R53SIGMA_IOC_CATEGORIES``), the catalogue,
the code of the package (``r53sigma`` and its pySigma pipeline), the versions of Python, pySigma and
DuckDB, the Public Suffix List the SQL split reads, and whether the scan has a baseline (first-seen rules
run only with one; their stand-ins keep the ``first_seen`` attribute and the log source it is read with).
Any change gives another key, so an entry is never stale. The Public Suffix List's parsed rules are kept
with every run, for both engines' forms of the split (the reference reader splits every Resolver name):
parsing the list's file is 0.1 s of a warm start. Entries are files ``runs/<key>.json`` under
:func:`r53sigma.catalogue.cache_dir`, written atomically; one that cannot be read, is not JSON, or holds
another key or format is ignored (the run is compiled again). The pySigma rules are loaded only when a row
needs the reference engine (an unknown SQL flag, a line the columns cannot hold, a file DuckDB does not
read, stdin): :class:`LazyReference`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from r53sigma.scan import sigma_names
from r53sigma.scan.standins import CONDITION_NODES, CachedCorrelation, CachedRule

# 2: each rule's match plan and the Public Suffix List's rules; 3: its SQL form derived, not kept; 4: log sources
# and first-seen attributes; 5: the catalogue log source derived from the rule's logsource, not kept
FORMAT = 5
MAX_RUNS = 32  # compiled runs kept (the newest); each is about the size of its rules' SQL
_PACKAGE = Path(__file__).resolve().parents[1]  # backends/r53sigma
_CODE = (_PACKAGE, _PACKAGE.parent / "sigma")  # the pack's pySigma pipeline (placeholders, filters) is code too


class _Uncacheable(Exception):
    """Something of the run has no plain-data form: it is not cached (the scan is as usual)."""


# ---------------------------------------------------------------- the key


def run_key(rule_paths: list[Path] | None, filters: list[Path] | None, duckdb_version: str,
            with_history: bool = False) -> str | None:
    """The content key of the run these inputs give, or None when the cache is off. ``with_history``: a scan
    with a baseline, which runs the first-seen rules a scan without one skips (another run, another key)."""
    from r53sigma import catalogue, ioc, rulefiles

    if catalogue.cache_dir() is None:
        return None
    digest = hashlib.sha256(f"{FORMAT}\0{sys.version}\0{duckdb_version}\0{os.getcwd()}\0{with_history}\0".encode())

    def add_file(path: Path) -> None:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
        except OSError as error:
            digest.update(f"unreadable {error.errno}".encode())

    given = [Path(p) for p in rule_paths] if rule_paths else rulefiles.default_rule_paths()
    digest.update(repr([str(p) for p in given]).encode())
    # the files given, then what a correlation naming a rule elsewhere may read (r53sigma.rules.load): the
    # folders of the files given and the pack, unless they are among the folders given
    files = rulefiles.discover(given)
    folders = [f for f in dict.fromkeys([*(p.parent for p in files), *rulefiles.default_rule_paths()])
               if not any(f == g or g in f.parents for g in given)]
    for path in dict.fromkeys(files + rulefiles.discover(folders)):
        add_file(path)
    digest.update(b"filters\0")
    for path in filters or []:
        add_file(Path(path))
    digest.update(b"ioc\0")
    for name in (ioc.ENV_FILE, ioc.ENV_CATEGORIES):
        value = os.environ.get(name)
        digest.update(f"{name}={value!r}\0".encode())
    if os.environ.get(ioc.ENV_FILE):
        add_file(Path(os.environ[ioc.ENV_FILE]))
    digest.update(b"catalogue\0")
    for path in sorted(catalogue.catalogue_dir().glob("*")):
        if path.is_file():
            add_file(path)
    digest.update(_environment_digest().encode())
    return digest.hexdigest()


def _environment_digest() -> str:
    """The package's code, pySigma's version and the Public Suffix List, without importing either."""
    digest = hashlib.sha256()
    for root in _CODE:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes())
    for package, distribution in (("sigma", "pysigma"), ("publicsuffixlist", "publicsuffixlist")):
        for location, names in _installed(package, distribution):
            digest.update(" ".join(names).encode())
            if package == "publicsuffixlist":
                for data in sorted(location.glob("*.dat")):
                    digest.update(data.read_bytes())
    return digest.hexdigest()


def duckdb_version() -> str:
    """DuckDB's version from its installed metadata (importing it is 0.1 s a warm small scan need not pay)."""
    for _, names in _installed("duckdb", "duckdb"):
        if len(names) == 1:
            return names[0].removeprefix("duckdb-").removesuffix(".dist-info")
    import duckdb

    return duckdb.__version__


def _installed(package: str, distribution: str) -> list[tuple[Path, list[str]]]:
    """Per folder of an importable package, the names of its distribution's ``.dist-info`` folders beside it."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    found = []
    for location in (spec.submodule_search_locations or []) if spec else []:
        site = Path(location).parent
        found.append((Path(location), sorted(p.name for p in site.glob("*.dist-info")
                                             if p.name.lower().startswith(f"{distribution}-"))))
    return found


# ---------------------------------------------------------------- the stand-ins (r53sigma.scan.standins)


def _tree_data(node: Any) -> list:
    if isinstance(node, sigma_names.SigmaRuleReference):
        return ["ref", node.reference]
    for name, kind in CONDITION_NODES.items():
        if isinstance(node, kind):
            return [name, [_tree_data(a) for a in node.args]]
    raise _Uncacheable(f"condition element {type(node).__name__}")


# ---------------------------------------------------------------- building and restoring


class CompiledRun:
    """The stand-ins of one run: every rule the engine evaluates, the chosen ones, the messages to print."""

    def __init__(self, data: dict):
        self.data = data
        self.rules: list[Any] = []
        by_index: dict[int, CachedRule] = {}
        for item in data["rules"]:
            rule = CachedRule(item)
            by_index[rule.index] = rule
            self.rules.append(rule)
        from r53sigma.scan.correlations import CorrelationPlan, condition_test

        for item in data["correlations"]:
            rule = CachedCorrelation(item)
            targets = [by_index[i] for i in item["rules"]]
            names = [set(n) for n in item["names"]]
            rule.plan = CorrelationPlan(
                rule, targets, names, item["span"], list(item["group_by"]),
                {id(t): [tuple(p) for p in paths] for t, paths in zip(targets, item["group_paths"])},
                {id(t): tuple(p) for t, p in zip(targets, item["value_paths"]) if p is not None},
                condition_test(rule, names))
            by_index[rule.index] = rule
            self.rules.append(rule)
        self.chosen = [by_index[i] for i in data["chosen"]]
        self.messages: list[str] = data["messages"]
        self.choices: list[str] = data["choices"]
        self.status: int = data["status"]
        self.by_index = by_index

    def matchable(self) -> bool:
        """Whether the reference engine can evaluate every rule of the run from its match plan."""
        return all(rule.match is not None for rule in self.rules if isinstance(rule, CachedRule))


def build(loaded: Any, chosen: list, engine: Any, messages: list[str], choices: list[str], status: int) -> dict | None:
    """The plain data of a checked cold run (``engine``: its DuckEngine; ``messages``: what the load printed,
    ``choices``: what choosing the rules printed), or None where some part has none."""
    from r53sigma import first_seen
    from r53sigma.scan import matchplan, registered_domain
    from r53sigma.scan.correlations import SigmaCorrelationRule
    from r53sigma.scan.results import EngineError

    position = {id(r): i for i, r in enumerate(loaded.collection.rules)}
    rules: dict[int, dict] = {}
    correlations: list[dict] = []
    try:
        def described(rule: Any) -> dict:
            if id(rule) not in position:
                raise _Uncacheable("a rule outside the load")
            path = rule.source.path if rule.source and rule.source.path else None
            level = getattr(rule.level, "name", None)
            return {"index": position[id(rule)], "id": str(rule.id) if rule.id else None, "name": rule.name,
                    "title": rule.title, "level": level, "path": str(path) if path else None,
                    "output": bool(getattr(rule, "_output", True))}

        def match_plan(rule: Any) -> list | None:
            try:
                return matchplan.of(rule)[1]
            except EngineError:
                return None

        def plain(rule: Any) -> int:
            if id(rule) not in rules:
                sql, unknown = engine.compiled(rule)
                ls = rule.logsource
                attributes = getattr(rule, "custom_attributes", None) or {}
                rules[id(rule)] = described(rule) | {
                    "sql": sql, "unknown": bool(unknown), "match": match_plan(rule),
                    "logsource": {"category": ls.category, "product": ls.product, "service": ls.service},
                    "custom_attributes": {k: v for k, v in attributes.items() if k == first_seen.ATTRIBUTE}}
            return rules[id(rule)]["index"]

        for rule in chosen:
            if not isinstance(rule, SigmaCorrelationRule):
                plain(rule)
                continue
            plan = engine.plan(rule)
            condition = rule.condition
            if isinstance(condition, sigma_names.SigmaExtendedCorrelationCondition):
                tree = condition._parsed if hasattr(condition, "_parsed") else condition.parse(condition.expression)
                condition_data = {"expression": condition.expression, "tree": _tree_data(tree)}
            else:
                condition_data = {"op": condition.op.name, "count": condition.count,
                                  "fieldref": condition.fieldref, "percentile": getattr(condition, "percentile", None)}
            correlations.append(described(rule) | {
                "type": rule.type.name, "condition": condition_data,
                "rules": [plain(t) for t in plan.rules], "names": [sorted(n) for n in plan.names],
                "span": plan.span, "group_by": list(plan.group_by),
                "group_paths": [[list(p) for p in plan.group_paths[id(t)]] for t in plan.rules],
                "value_paths": [list(plan.value_paths[id(t)]) if id(t) in plan.value_paths else None for t in plan.rules],
            })
        data = {"format": FORMAT, "rules": list(rules.values()), "correlations": correlations,
                "chosen": [position[id(r)] for r in chosen], "messages": list(messages), "choices": list(choices), "status": status,
                "psl_rules": registered_domain.list_rules()}  # the reference reader splits every Resolver name
        json.dumps(data)  # every value plain (a condition count that is not a number ...)
        return data
    except (_Uncacheable, TypeError, ValueError, AttributeError):
        return None


# ---------------------------------------------------------------- storage


def _runs_dir() -> Path | None:
    from r53sigma.catalogue import cache_dir

    base = cache_dir()
    return base / "runs" if base is not None else None


def load(key: str | None) -> CompiledRun | None:
    """The compiled run of a key, or None (no entry, or one that is corrupt, foreign or of another format)."""
    folder = _runs_dir()
    if key is None or folder is None:
        return None
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
            return None
        run = CompiledRun(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    from r53sigma.scan import registered_domain

    registered_domain.given_list_rules(tuple(data["psl_rules"]))
    return run


def save(key: str | None, data: dict | None) -> None:
    """Write a compiled run atomically under the cache folder (a problem writing only means compiling again)."""
    folder = _runs_dir()
    if key is None or data is None or folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".run.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data | {"key": key}, handle)
            os.replace(tmp, folder / f"{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        runs = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in runs[:-MAX_RUNS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


# ---------------------------------------------------------------- the reference engine, when a row needs it


class LazyReference:
    """The reference engine for a compiled run's stand-ins: the pySigma rules are loaded (as the cold run
    loads them) on the first question, and each stand-in is answered by the rule at its place in the load."""

    def __init__(self, run: CompiledRun, load_rules: Callable[[], Any]):
        self.run, self._load_rules = run, load_rules
        self._engine: Any = None
        self._real: dict[int, Any] = {}

    def _real_rule(self, stand_in: Any) -> Any:
        if self._engine is None:
            from r53sigma.scan.reference import Engine

            loaded = self._load_rules()
            rules = list(loaded.collection.rules)
            for index, rule in self.run.by_index.items():
                real = rules[index] if index < len(rules) else None
                if real is None or real.title != rule.title:  # the files changed under the scan
                    raise RuntimeError(f"rule files changed during the scan: {rule.title!r} is not where it was")
                self._real[id(rule)] = real
            self._engine = Engine(loaded.collection)
        return self._real[id(stand_in)]

    def matches(self, rule: Any, event: Any) -> bool:
        real = self._real_rule(rule)
        return self._engine.matches(real, event)

    def check(self, rule: Any) -> None:
        """Stand-ins were checked by the cold run that compiled them."""

    def plan(self, rule: Any) -> Any:
        return rule.plan
