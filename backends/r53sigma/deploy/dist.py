"""Reading what `r53sigma package` wrote under dist/ (layout: the package command's docstring / README).

Nothing is rendered here: a deploy sends exactly the packaged objects.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from r53sigma.deploy.common import DeployError


DEFAULT_DIST = Path("dist")  # relative to the current folder: where `package` writes and `deploy` reads


class DistError(DeployError):
    fatal = True


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DistError(f"{path} is missing: run `r53sigma package` first") from None
    except (OSError, ValueError) as error:
        raise DistError(f"{path}: {error}") from None


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DistError(f"{path} is missing: run `r53sigma package` first")
    return path


def json_objects(folder: Path) -> dict[str, dict]:
    """`<name>.json` request bodies in a folder, by object name (the file stem)."""
    if not folder.is_dir():
        return {}
    return {path.name[: -len(".json")]: _read_json(path) for path in sorted(folder.glob("*.json"))}


def ndjson(path: Path) -> list[dict]:
    if not path.is_file():
        raise DistError(f"{path} is missing: run `r53sigma package` first")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                raise DistError(f"{path}:{number}: {error}") from None
    return rows


def read_json(path: Path):
    return _read_json(path)


def conf_stanzas(path: Path) -> dict[str, dict[str, str]]:
    """A Splunk .conf file: `[stanza]` headers, `key = value` lines, `\\` line continuations, `#` comments."""
    if not path.is_file():
        raise DistError(f"{path} is missing: run `r53sigma package` first")
    stanzas: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        while line.endswith("\\") and index + 1 < len(lines):  # a continued value keeps its newline
            index += 1
            line = line[:-1] + "\n" + lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stanzas.setdefault(stripped[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            raise DistError(f"{path}: cannot read line {index}: {stripped[:60]!r}")
        current[key.strip()] = value.strip()
    return stanzas


@dataclass
class RuleNames:
    """Rule id <-> title, from dist/queries/queries.json when it is there, to resolve `--only`."""

    titles: dict[str, str]

    @classmethod
    def load(cls, dist: Path) -> "RuleNames":
        path = dist / "queries" / "queries.json"
        titles: dict[str, str] = {}
        if path.is_file():
            data = _read_json(path)
            for row in data if isinstance(data, list) else data.get("queries", []) if isinstance(data, dict) else []:
                if isinstance(row, dict) and row.get("rule_id") and row.get("title"):
                    titles[str(row["rule_id"])] = str(row["title"])
        return cls(titles)


class Selection:
    """`--only`: rule ids or titles (case-insensitive); None selects everything."""

    def __init__(self, only: list[str] | None, names: RuleNames | None = None):
        self.wanted = None if not only else {item.strip().lower() for item in only if item.strip()}
        self.names = names or RuleNames({})
        self.matched: set[str] = set()

    @property
    def everything(self) -> bool:
        return self.wanted is None

    def __call__(self, rule_id: str | None = None, title: str | None = None) -> bool:
        if self.wanted is None:
            return True
        if rule_id and not title:
            title = self.names.titles.get(rule_id)
        if title and not rule_id:
            rule_id = next((i for i, t in self.names.titles.items() if t.lower() == title.lower()), None)
        keys = {k.lower() for k in (rule_id, title) if k}
        hits = keys & self.wanted
        self.matched |= hits
        return bool(hits)

    def unmatched(self) -> list[str]:
        return sorted(self.wanted - self.matched) if self.wanted else []
