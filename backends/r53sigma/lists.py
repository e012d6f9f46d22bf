"""Name lists behind the list-based rules, kept as data files with their source and date.

A list file (``data/lists/<name>.yml``) holds the values, where they come from (``source``), when
they were taken (``retrieved``), and which detection items of which rule are written from them
(``rule``, ``items``: a detection name, its ``query_name`` modifier and a prefix such as ``.`` for
"any subdomain of"). Sigma has no external lists, so the rule keeps the values inline; ``check``
proves rule and list agree, ``refresh`` replaces a list from a user-supplied file (one name per
line; ``#`` comments, hosts-file lines ``0.0.0.0 name`` and ``*.`` wildcards accepted) and rewrites
the rule's items in place, leaving every other line of the rule as it was (comments between the
values go with them).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from r53sigma import rules as rule_loading

LISTS_DIR = Path(__file__).resolve().parent / "data" / "lists"
NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
ITEM = re.compile(r"^(\s+)- '([^']*)'\s*(#.*)?$")


class ListError(ValueError):
    """A list, its rule or a refresh input that cannot be used: one line naming the file and reason."""


@dataclass
class NameList:
    path: Path
    name: str
    description: str
    source: str
    retrieved: str
    rule: str
    items: list[dict]
    values: list[str] = field(default_factory=list)

    def rendered(self, item: dict) -> list[str]:
        return [f"{item.get('prefix', '')}{value}" for value in self.values]

    def dump(self) -> str:
        document = {"name": self.name, "description": self.description, "source": self.source,
                    "retrieved": self.retrieved, "rule": self.rule, "items": self.items, "values": self.values}
        header = f"# Refresh: r53sigma lists refresh {self.name} --from FILE --source TEXT (see README, \"Lists\")\n"
        return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def load(path: Path) -> NameList:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return NameList(Path(path), data["name"], data.get("description", ""), data["source"], str(data["retrieved"]),
                        data["rule"], list(data["items"]), [str(v) for v in data.get("values") or []])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ListError(f"{path}: not a name list ({error})") from None


def all_lists(lists_dir: Path = LISTS_DIR) -> list[NameList]:
    return [load(p) for p in sorted(Path(lists_dir).glob("*.yml"))]


def find(name: str, lists_dir: Path = LISTS_DIR) -> NameList:
    for name_list in all_lists(lists_dir):
        if name_list.name == name:
            return name_list
    raise ListError(f"no list named {name!r} in {lists_dir}")


def rule_path(name_list: NameList, rules_dir: Path) -> Path:
    found = [p for p in rule_loading.discover([rules_dir]) if p.stem == name_list.rule]
    if not found:
        raise ListError(f"{name_list.path}: rule {name_list.rule!r} not found under {rules_dir}")
    return found[0]


def _item_span(lines: list[str], detection: str, modifier: str, where: Path) -> tuple[int, int]:
    """Line range of the ``- '...'`` values under ``<detection>:`` / ``query_name<modifier>:``."""
    key = "query_name" + (f"|{modifier}" if modifier else "") + ":"
    for index, line in enumerate(lines):
        if line.strip() == f"{detection}:" and index + 1 < len(lines) and lines[index + 1].strip() == key:
            start = end = index + 2
            comment = lambda line: line.strip().startswith("#")
            while end < len(lines) and (ITEM.match(lines[end]) or comment(lines[end])):
                end += 1
            while end > start and comment(lines[end - 1]):  # a comment after the values belongs to what follows
                end -= 1
            if end == start:
                break
            return start, end
    raise ListError(f"{where}: no '{detection}:' with '{key}' and a list of quoted values")


def rule_values(text: str, item: dict, where: Path) -> list[str]:
    lines = text.splitlines()
    start, end = _item_span(lines, item["detection"], item.get("modifier", ""), where)
    return [m.group(2) for m in (ITEM.match(line) for line in lines[start:end]) if m]


def write_items(text: str, item: dict, values: list[str], where: Path) -> str:
    lines = text.splitlines()
    start, end = _item_span(lines, item["detection"], item.get("modifier", ""), where)
    indent = next(m.group(1) for m in map(ITEM.match, lines[start:end]) if m)
    lines[start:end] = [f"{indent}- '{value}'" for value in values]
    return "\n".join(lines) + "\n"


def check(rules_dir: Path | None = None, lists_dir: Path = LISTS_DIR) -> list[str]:
    """Every list against its rule: the rule's items must be exactly the list's values."""
    rules_dir = rules_dir or rule_loading.default_rule_paths()[0]
    problems = []
    for name_list in all_lists(lists_dir):
        path = rule_path(name_list, rules_dir)
        text = path.read_text(encoding="utf-8")
        for item in name_list.items:
            in_rule = rule_values(text, item, path)
            if in_rule != name_list.rendered(item):
                missing = sorted(set(name_list.rendered(item)) - set(in_rule))
                extra = sorted(set(in_rule) - set(name_list.rendered(item)))
                problems.append(f"{path}: {item['detection']} differs from list {name_list.name} "
                                f"(missing {missing[:5]}, not in the list {extra[:5]}): run `r53sigma lists refresh`")
    return problems


def parse_names(text: str, where: Path) -> list[str]:
    """Names of a user-supplied list: one per line; comments, hosts-file addresses, wildcards and
    trailing dots removed; lower case, sorted, unique. Lines that are not DNS names are an error."""
    names, bad = set(), []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9.:a-fA-F]+", parts[0]):  # hosts file: address name
            line = parts[1]
        elif len(parts) != 1:
            bad.append(number)
            continue
        name = line.lower().rstrip(".")
        name = name[2:] if name.startswith("*.") else name.lstrip(".")
        if NAME.match(name):
            names.add(name)
        else:
            bad.append(number)
    if bad:
        raise ListError(f"{where}: line(s) {', '.join(map(str, bad[:10]))} are not DNS names")
    if not names:
        raise ListError(f"{where}: no names")
    return sorted(names)


def refresh(name: str, source_file: Path, source: str, retrieved: str | None = None,
            rules_dir: Path | None = None, lists_dir: Path = LISTS_DIR) -> tuple[NameList, Path]:
    """Replace a list's values with the names of ``source_file`` and rewrite its rule; both files are
    written only when everything parsed, the rule file last-replaced atomically."""
    if "site-packages" in Path(lists_dir).resolve().parts or "dist-packages" in Path(lists_dir).resolve().parts:
        # the installed pack is never modified: refreshing is for a checkout of the rules (git clone)
        raise ListError(f"refresh rewrites the pack's list and rule files, and this pack is installed "
                        f"({lists_dir}): run it in a checkout of the repository (git clone), never on the installed package")
    rules_dir = rules_dir or rule_loading.default_rule_paths()[0]
    name_list = find(name, lists_dir)
    try:
        text = Path(source_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ListError(f"{source_file}: {error}") from None
    name_list.values = parse_names(text, Path(source_file))
    name_list.source = source
    name_list.retrieved = retrieved or dt.date.today().isoformat()
    path = rule_path(name_list, rules_dir)
    rule_text = path.read_text(encoding="utf-8")
    for item in name_list.items:
        rule_text = write_items(rule_text, item, name_list.rendered(item), path)
    _replace(name_list.path, name_list.dump())
    _replace(path, rule_text)
    return name_list, path


def _replace(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(content, encoding="utf-8")
    temporary.replace(path)
