"""Property-based bad input (hypothesis, bounded) at the rule loader, convert, test, package and scan:
no traceback, a one-line message naming the file (and line), a non-zero exit, no partial output, and
every good rule or line still processed."""
from __future__ import annotations

import gzip
import itertools
import json
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from r53sigma import cli
from r53sigma import rules as rules_mod

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=8)

GOOD_RULE = textwrap.dedent("""\
    title: Good Rule FORMERR
    id: 7d0d5b2e-0000-4000-8000-00000000f00d
    status: test
    description: The rule every fuzz case keeps alongside the bad one.
    author: tests
    date: 2024-01-01
    logsource: {product: aws, service: route53resolver}
    detection:
        selection:
            rcode: FORMERR
        condition: selection
    falsepositives: [none]
    level: low
    """)
GOOD_CASES = textwrap.dedent("""\
    rule: 7d0d5b2e-0000-4000-8000-00000000f00d
    cases:
      - name: FORMERR alerts
        events:
          - {query_timestamp: "2024-05-01T10:00:00Z", query_name: a.example., rcode: FORMERR, srcaddr: 10.0.0.1}
        alerts: 1
    """)
GOOD_QUERY_MARK = 'reply_code="FORMERR"'  # in the Splunk query of the good rule
FIELDS = ["title", "id", "status", "description", "author", "date", "modified", "references", "tags", "logsource",
          "detection", "falsepositives", "level", "fields", "related"]
WRONG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
)


def _with_field(field: str, value) -> str:
    rule = yaml.safe_load(GOOD_RULE)
    rule["id"] = str(uuid.uuid4())
    if field.startswith("detection."):
        rule["detection"][field.split(".", 1)[1]] = value
    else:
        rule[field] = value
    return yaml.safe_dump(rule, sort_keys=False)


def _correlation_with(field: str, value) -> str:
    correlation = {"title": "Fuzzed correlation", "id": str(uuid.uuid4()),
                   "correlation": {"type": "event_count", "rules": ["good_rule"], "group-by": ["srcaddr"],
                                   "timespan": "5m", "condition": {"gte": 2}}, "level": "low"}
    correlation["correlation"][field] = value
    return yaml.safe_dump(correlation, sort_keys=False)


BAD_RULE_TEXT = st.one_of(
    st.text(max_size=300),
    st.integers(min_value=0, max_value=len(GOOD_RULE) - 1).map(lambda n: GOOD_RULE.replace("f00d", "bad0")[:n]),
    st.tuples(st.sampled_from(FIELDS + ["detection.selection", "detection.condition"]), WRONG_VALUES)
    .map(lambda pair: _with_field(*pair)),
    st.tuples(st.sampled_from(["type", "rules", "group-by", "timespan", "condition"]), WRONG_VALUES)
    .map(lambda pair: _correlation_with(*pair)),
    st.integers(min_value=1, max_value=3000).map(lambda depth: GOOD_RULE.replace(
        "rcode: FORMERR", "rcode: " + "[" * depth + "x" + "]" * depth).replace("f00d", "dee9")),
)
BAD_RULE_BYTES = st.one_of(BAD_RULE_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300))

_counter = itertools.count()


def _pack(tmp_path: Path, bad: bytes) -> tuple[Path, Path]:
    """A fresh folder per example: the good rule, then the bad file (sorted after it)."""
    folder = tmp_path / f"example-{next(_counter)}"
    rules = folder / "rules"
    rules.mkdir(parents=True)
    (rules / "good_rule.yml").write_text(GOOD_RULE.replace("title: Good Rule FORMERR", "title: Good Rule FORMERR\nname: good_rule"))
    (rules / "zz_bad.yml").write_bytes(bad)
    return folder, rules


def _no_traceback(captured) -> None:
    assert "Traceback" not in captured.out + captured.err


def _mentions_only_as_one_liners(text: str, name: str) -> None:
    for line in text.splitlines():
        if name in line:
            assert line.strip(), line


@FUZZ
@given(bad=BAD_RULE_BYTES)
def test_the_rule_loader_reports_a_bad_file_and_keeps_the_good_one(tmp_path, bad):
    _, rules = _pack(tmp_path, bad)
    loaded = rules_mod.load([rules])
    assert rules / "good_rule.yml" in loaded.files
    for error in loaded.errors:
        assert error.path == rules / "zz_bad.yml" and "\n" not in error.message and error.message


@FUZZ
@given(bad=BAD_RULE_BYTES)
def test_convert_reports_the_bad_file_and_converts_the_good_one(tmp_path, capsys, bad):
    folder, rules = _pack(tmp_path, bad)
    code = cli.main(["convert", "-t", "splunk", str(rules)])
    captured = capsys.readouterr()
    _no_traceback(captured)
    assert GOOD_QUERY_MARK in captured.out
    bad_lines = [line for line in captured.err.splitlines() if "zz_bad.yml" in line]
    assert code == (1 if bad_lines else 0), captured.err
    assert all(line.startswith(("error: ", "not expressible: ")) for line in bad_lines)


@FEW
@given(bad=BAD_RULE_BYTES)
def test_package_writes_nothing_when_a_rule_is_bad(tmp_path, capsys, bad):
    folder, rules = _pack(tmp_path, bad)
    out = folder / "dist"
    code = cli.main(["package", str(rules), "--out", str(out)])
    captured = capsys.readouterr()
    _no_traceback(captured)
    if code == 0:
        ids = [r["rule_id"] for r in json.loads((out / "queries" / "queries.json").read_text())]
        assert "7d0d5b2e-0000-4000-8000-00000000f00d" in ids and len(ids) == len(set(ids))
    else:
        assert code == 1 and "zz_bad.yml" in captured.err or "left out" in captured.err
        assert not out.exists()  # no partial output


@FEW
@given(bad=BAD_RULE_BYTES)
def test_test_runs_the_good_rules_cases_whatever_the_bad_file_holds(tmp_path, capsys, bad):
    folder, rules = _pack(tmp_path, bad)
    cases = folder / "cases"
    cases.mkdir()
    (cases / "good_rule.yml").write_text(GOOD_CASES)
    code = cli.main(["test", "--cases", str(cases), "--format", "json", str(rules)])
    captured = capsys.readouterr()
    _no_traceback(captured)
    report = json.loads(captured.out)
    assert [(r["case"], r["passed"]) for r in report["results"]] == [("FORMERR alerts", True)]
    assert code == 1  # the bad file is either broken or a rule without a case
    assert any("zz_bad.yml" in p["path"] for p in report["problems"])
    assert "zz_bad.yml" in captured.err


# ---------------------------------------------------------------- scan

SAMPLE = Path(cli.__file__).parent / "samples" / "resolver_query_logs.jsonl"
GOOD_LINES = SAMPLE.read_text().splitlines()[:40]
SCAN_RULE = Path(cli.__file__).parents[2] / "sigma_rules" / "resolver" / "rare_dns_response_code.yml"


def _wrong_type_record(pair) -> str:
    field, value = pair
    record = json.loads(GOOD_LINES[0])
    record[field] = value
    return json.dumps(record)


BAD_LINE = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=200),
    st.integers(min_value=1, max_value=len(GOOD_LINES[1]) - 2).map(lambda n: GOOD_LINES[1][:n]),
    st.tuples(st.sampled_from(["query_name", "rcode", "srcaddr", "answers", "query_timestamp", "srcids", "query_type"]),
              WRONG_VALUES).map(_wrong_type_record),
    st.integers(min_value=1, max_value=200).map(lambda d: '{"query_name": ' + "[" * d + '"a."' + "]" * d + "}"),
    st.integers(min_value=1, max_value=2000).map(lambda n: '{"query_name": "' + "ab" * n + '.example.", "rcode": "FORMERR"}'),
)


def _scan(argv, capsys):
    code = cli.main(["scan", "--no-progress", "--rules", str(SCAN_RULE), *argv])
    captured = capsys.readouterr()
    _no_traceback(captured)
    return code, captured


def _alerted_lines(path: Path) -> set[int]:
    return {int(json.loads(line)["origin"].rsplit(":", 1)[1]) for line in path.read_text().splitlines()}


def _expected_good(positions: dict[int, int]) -> set[int]:
    """Line numbers (in the mixed file) of good lines that alert on their own."""
    return {line for line, index in positions.items() if '"rcode":"FORMERR"' in GOOD_LINES[index].replace(" ", "")}


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
@FEW
@given(bad_lines=st.lists(BAD_LINE, min_size=1, max_size=5), where=st.randoms(use_true_random=False))
def test_scan_skips_bad_lines_and_processes_every_good_one(engine, tmp_path, capsys, bad_lines, where):
    lines = [(True, i) for i in range(len(GOOD_LINES))] + [(False, b) for b in bad_lines]
    where.shuffle(lines)
    folder = tmp_path / f"scan-{next(_counter)}"
    folder.mkdir()
    logs = folder / "mixed.jsonl"
    logs.write_text("\n".join(GOOD_LINES[item] if good else item for good, item in lines) + "\n")
    positions = {n: item for n, (good, item) in enumerate(lines, 1) if good}
    out = folder / "alerts.jsonl"
    code, captured = _scan(["--engine", engine, str(logs), "-o", str(out)], capsys)
    assert code == 0, captured.err
    assert _alerted_lines(out) & set(positions) == _expected_good(positions)
    for line in captured.err.splitlines():
        if "mixed.jsonl:" in line:
            assert line.strip().startswith(str(logs) + ":")  # file and line of each skipped one


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
@FEW
@given(cut=st.floats(min_value=0.05, max_value=0.95))
def test_scan_of_a_truncated_gzip_reports_it_and_keeps_the_lines_before(engine, tmp_path, capsys, cut):
    folder = tmp_path / f"gz-{next(_counter)}"
    folder.mkdir()
    whole = gzip.compress(("\n".join(GOOD_LINES) + "\n").encode())
    logs = folder / "cut.jsonl.gz"
    logs.write_bytes(whole[: max(11, int(len(whole) * cut))])
    out = folder / "alerts.jsonl"
    code, captured = _scan(["--engine", engine, str(logs), "-o", str(out)], capsys)
    assert "cut.jsonl.gz" in captured.err and ("truncated gzip" in captured.err or "corrupt gzip" in captured.err)
    if code == 0:
        assert _alerted_lines(out) <= _expected_good({n: n - 1 for n in range(1, len(GOOD_LINES) + 1)})
    else:
        assert code == 1 and "every line or file was skipped" in captured.err and not out.exists()


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_scan_survives_deeply_nested_json(engine, tmp_path, capsys):
    logs = tmp_path / "deep.jsonl"
    logs.write_text("\n".join([*GOOD_LINES, '{"a":' * 5000 + "1" + "}" * 5000]) + "\n")
    code, captured = _scan(["--engine", engine, str(logs), "-o", str(tmp_path / "alerts.jsonl")], capsys)
    assert code == 0 and f"{logs}:{len(GOOD_LINES) + 1}" in captured.err


def _case_with(field: str, value) -> str:
    doc = yaml.safe_load(GOOD_CASES)
    if field == "rule":
        doc["rule"] = value
    elif field == "cases":
        doc["cases"] = value
    elif field == "event":
        doc["cases"][0]["events"] = [value]
    else:
        doc["cases"][0][field] = value
    return yaml.safe_dump(doc, sort_keys=False)


BAD_CASE_TEXT = st.one_of(
    st.text(max_size=200),
    st.integers(min_value=0, max_value=len(GOOD_CASES) - 1).map(lambda n: GOOD_CASES[:n]),
    st.tuples(st.sampled_from(["rule", "cases", "event", "name", "events", "alerts"]), WRONG_VALUES)
    .map(lambda pair: _case_with(*pair)),
)


@FUZZ
@given(bad=BAD_CASE_TEXT)
def test_test_reports_a_bad_case_file_and_runs_the_good_one(tmp_path, capsys, bad):
    folder, rules = _pack(tmp_path, GOOD_RULE.replace("f00d", "f00e").replace("Good Rule", "Second Rule").encode())
    cases = folder / "cases"
    cases.mkdir()
    (cases / "good_rule.yml").write_text(GOOD_CASES)
    (cases / "zz_bad.yml").write_text(bad)
    code = cli.main(["test", "--cases", str(cases), "--format", "json", str(rules)])
    captured = capsys.readouterr()
    _no_traceback(captured)
    report = json.loads(captured.out)
    good = [r for r in report["results"] if r["case_file"].endswith("good_rule.yml")]
    assert [(r["case"], r["passed"]) for r in good] == [("FORMERR alerts", True)]
    bad_results = [r for r in report["results"] if r["case_file"].endswith("zz_bad.yml")]
    bad_problems = [p for p in report["problems"] if p["path"].endswith("zz_bad.yml")]
    assert code == (0 if not bad_problems and all(r["passed"] for r in report["results"])
                    and not report["problems"] else 1)
    for problem in bad_problems:
        assert "\n" not in problem["message"]


@FEW
@given(bad=BAD_CASE_TEXT)
def test_verify_reports_a_bad_case_file_and_verifies_the_good_one(tmp_path, capsys, bad):
    folder, rules = _pack(tmp_path, b"")
    (rules / "zz_bad.yml").unlink()
    cases = folder / "cases"
    cases.mkdir()
    (cases / "good_rule.yml").write_text(GOOD_CASES)
    (cases / "zz_bad.yml").write_text(bad)
    code = cli.main(["verify", "-t", "splunk", "--cases", str(cases), "--format", "json", str(rules)])
    captured = capsys.readouterr()
    _no_traceback(captured)
    report = json.loads(captured.out)
    assert [(c["rule"], c["status"]) for c in report["cells"]] == [("good_rule", "agree")]
    assert code == (1 if report["problems"] else 0)
    assert all("\n" not in p for p in report["problems"])
