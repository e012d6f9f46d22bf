"""MITRE ATT&CK facts for the pack's tags, from a small JSON file shipped with the package.

Nothing is downloaded (pySigma's own ATT&CK helpers fetch data at run time and fail offline).
``data/attack.json`` lists only the techniques the rules use: tag a rule with a new technique
after adding it there.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "attack.json"
TECHNIQUE_TAG = re.compile(r"^t[0-9]{4}(\.[0-9]{3})?$")


class UnknownAttackId(KeyError):
    """A technique id or tactic name that attack.json does not list."""


@dataclass(frozen=True)
class Tactic:
    shortname: str  # as in tags: command-and-control
    id: str  # TA0011
    name: str  # Command and Control


@dataclass(frozen=True)
class Technique:
    id: str  # T1071.004
    name: str  # DNS
    tactics: tuple[str, ...]  # tactic shortnames

    @property
    def parent(self) -> str | None:
        return self.id.split(".")[0] if "." in self.id else None


@dataclass(frozen=True)
class AttackTags:
    """A rule's ATT&CK tags, split into technique ids (upper case) and tactic shortnames."""

    techniques: tuple[str, ...]
    tactics: tuple[str, ...]


@functools.cache
def _data() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def version() -> str:
    return _data()["version"]


def tactic(shortname: str) -> Tactic:
    entry = _data()["tactics"].get(shortname)
    if entry is None:
        raise UnknownAttackId(f"unknown ATT&CK tactic {shortname!r}")
    return Tactic(shortname, entry["id"], entry["name"])


def technique(tid: str) -> Technique:
    tid = tid.upper()
    entry = _data()["techniques"].get(tid)
    if entry is None:
        raise UnknownAttackId(f"ATT&CK technique {tid} is not in {DATA_FILE.name}")
    return Technique(tid, entry["name"], tuple(entry["tactics"]))


def tactics() -> list[Tactic]:
    return [tactic(name) for name in _data()["tactics"]]


def tags_of(rule) -> AttackTags:
    """The ``attack.*`` tags of a pySigma rule (or correlation rule); other namespaces are ignored.

    Group and software tags (attack.g0001, attack.s0002) are neither and are left out.
    """
    techniques: list[str] = []
    tactic_names: list[str] = []
    for tag in rule.tags or ():
        if tag.namespace != "attack":
            continue
        if TECHNIQUE_TAG.match(tag.name):
            techniques.append(tag.name.upper())
        elif not re.match(r"^[gs][0-9]{4}$", tag.name):
            tactic_names.append(tag.name)
    return AttackTags(tuple(techniques), tuple(tactic_names))
