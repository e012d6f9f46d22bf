"""Run Elasticsearch Lucene (query_string) queries on documents with the real Lucene.

Debian's liblucene8-java on the machine's Java: the classic QueryParser and MemoryIndex, with
fields typed as an Elasticsearch mapping types them (see LuceneQuery.java for what follows ES
rather than plain Lucene). The Java source is compiled once into a cache folder.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Mapping

JAVA_SOURCE = Path(__file__).with_name("LuceneQuery.java")
JAR_NAMES = ("lucene-core", "lucene-queryparser", "lucene-memory", "lucene-analyzers-common", "lucene-misc")
JAR_DIRS = ("/usr/share/java",)

Value = tuple[str, str, str]  # (field, type: keyword|normalized|ip|long|date, value)
INDEXED_TYPES = ("ip", "long", "date")  # typed as Elasticsearch types them; any other mapping type is a keyword


def indexed_type(mapping_type: str, name: str, flattened_roots: tuple[str, ...] = ()) -> str:
    """The harness type of a field: a `.caseless` sub-field is a keyword with the lowercase normalizer;
    a key under one of ``flattened_roots`` is a flattened key (term and prefix queries only)."""
    if name.endswith(".caseless"):
        return "normalized"
    if any(name.startswith(root + ".") for root in flattened_roots):
        return "flattened"
    return mapping_type if mapping_type in INDEXED_TYPES else "keyword"


class LuceneUnavailable(RuntimeError):
    """Java or the Lucene jars are missing: callers skip with this reason."""


def _jars() -> list[str]:
    jars = []
    for name in JAR_NAMES:
        found = sorted(p for d in JAR_DIRS for p in glob.glob(f"{d}/{name}-[0-9]*.jar"))
        if not found:
            raise LuceneUnavailable(f"{name} jar not found in {', '.join(JAR_DIRS)} (apt-get install liblucene8-java)")
        jars.append(found[-1])
    return jars


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(JAVA_SOURCE.read_bytes()).hexdigest()[:16]
    return base / "r53sigma" / f"lucene-{digest}"


class LuceneEngine:
    def __init__(self) -> None:
        for tool in ("java", "javac"):
            if shutil.which(tool) is None:
                raise LuceneUnavailable(f"{tool} not found (Java 17 is needed for the Lucene checks)")
        self.classpath = os.pathsep.join(_jars())
        self.classes = _cache_dir()
        if not (self.classes / "LuceneQuery.class").exists():
            self.classes.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["javac", "-nowarn", "-cp", self.classpath, "-d", str(self.classes), str(JAVA_SOURCE)],
                check=True, capture_output=True, text=True,
            )

    def search(self, documents: list[Iterable[Value]], queries: Mapping[str, str]) -> dict[str, set[int] | str]:
        """For each query id: the numbers of the matching documents, or the parser's error text."""
        lines = []
        for document in documents:
            lines.append("D")
            for field, kind, value in document:
                lines.append(f"F\t{_escape(field)}\t{kind}\t{_escape(str(value))}")
        for query_id, query in queries.items():
            lines.append(f"Q\t{_escape(query_id)}\t{_escape(query)}")
        result = subprocess.run(
            ["java", "-cp", os.pathsep.join([str(self.classes), self.classpath]), "LuceneQuery"],
            input="\n".join(lines) + "\n", capture_output=True, text=True, encoding="utf-8", check=True,
        )
        answers: dict[str, set[int] | str] = {}
        for line in result.stdout.splitlines():
            kind, query_id, rest = (line.split("\t", 2) + [""])[:3]
            answers[query_id] = {int(n) for n in rest.split(",") if n} if kind == "R" else rest
        return answers


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\n")


def flatten(document: Mapping, types: Mapping[str, str], caseless: Iterable[str] = ()) -> list[Value]:
    """Index values of a nested ECS document: dotted names, one value per array element.

    ``types`` gives the mapping type of a field (default keyword); ``caseless`` names fields that
    also get a lower-cased ``<field>.caseless`` sub-field, as the pack's index template declares.
    """
    caseless = set(caseless)
    values: list[Value] = []

    def walk(prefix: str, node) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        elif isinstance(node, list):
            for child in node:
                walk(prefix, child)
        elif node is not None:
            kind = types.get(prefix, "keyword")
            text = str(node).lower() if isinstance(node, bool) else str(node)
            values.append((prefix, indexed_type(kind, prefix), text))
            if prefix in caseless:
                values.append((f"{prefix}.caseless", "normalized", text.lower()))

    walk("", document)
    return values
