"""What a user expects of a finished tool: progress on a terminal only, Ctrl-C with a summary, JSON for CI,
an example in every --help, problems on stderr, non-zero exits for nothing done."""
from __future__ import annotations

import gzip
import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from r53sigma import cli
from support import REPO

SAMPLE = Path(cli.__file__).parent / "samples" / "resolver_query_logs.jsonl"
ONE_RULE = REPO / "sigma_rules" / "resolver" / "rare_dns_response_code.yml"


def big_log(tmp_path: Path, copies: int = 20) -> Path:
    logs = tmp_path / "big.jsonl"
    lines = SAMPLE.read_bytes()
    with logs.open("wb") as handle:
        for _ in range(copies):
            handle.write(lines)
    return logs


def run_on_a_terminal(argv: list[str], seconds: float = 300) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns the exit code and what the terminal showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "r53sigma", *argv], stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    return process.returncode, shown.decode("utf-8", "replace")


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_scan_shows_progress_on_a_terminal(engine, tmp_path):
    log = big_log(tmp_path)
    code, shown = run_on_a_terminal(["scan", str(log), "--engine", engine, "-o", str(tmp_path / "a.jsonl")])
    assert code == 0, shown
    total = f"/{log.stat().st_size / 1e6:.1f} MB"  # rich's DownloadColumn: decimal megabytes, one digit (3.5 MB)
    assert " events, " in shown and " alerts" in shown and total in shown  # events, alerts, bytes read
    events = sum(1 for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()) * 20
    assert f"scanned {events} events" in shown


def test_scan_is_quiet_when_stderr_is_no_terminal(tmp_path):
    result = subprocess.run([sys.executable, "-m", "r53sigma", "scan", str(big_log(tmp_path, 200))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "\r" not in result.stderr and "\x1b" not in result.stderr and " events, " not in result.stderr


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_ctrl_c_stops_cleanly_with_a_summary(engine, tmp_path):
    logs = big_log(tmp_path, 1000)  # long enough that even the DuckDB engine is still scanning when interrupted
    scan = subprocess.Popen([sys.executable, "-m", "r53sigma", "scan", str(logs), "--engine", engine, "-o",
                             str(tmp_path / "out" / "alerts.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "out").is_dir():
        time.sleep(0.05)
    time.sleep(0.2)
    scan.send_signal(signal.SIGINT)
    _, err = scan.communicate(timeout=300)
    assert scan.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: the counts above are for the part scanned" in err and "scanned " in err
    assert list((tmp_path / "out").iterdir()) == []  # no partial output


def test_gzip_on_stdin_is_read_as_gzip(capsys, monkeypatch, tmp_path):
    raw = gzip.compress(SAMPLE.read_bytes())
    for engine in ("reference", "duckdb"):
        result = subprocess.run([sys.executable, "-m", "r53sigma", "scan", "-", "--engine", engine], input=raw,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr
        events = sum(1 for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip())
        assert f"scanned {events} events".encode() in result.stderr and b"0 skipped" in result.stderr


def test_scan_of_nothing_or_only_bad_lines_exits_non_zero(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["scan", str(tmp_path / "empty")]) == 1
    assert "no log events found" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("not a log line\n{\"truncated\": \n")
    assert cli.main(["scan", str(tmp_path / "bad.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "every line or file was skipped" in err and "bad.jsonl:1" in err


def test_scan_output_onto_a_folder_is_a_message(tmp_path, capsys):
    assert cli.main(["scan", str(SAMPLE), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_convert_and_package_of_no_rules_exit_non_zero(tmp_path, capsys):
    (tmp_path / "rules").mkdir()
    assert cli.main(["convert", str(tmp_path / "rules")]) == 1
    assert "no Sigma rule found" in capsys.readouterr().err
    assert cli.main(["package", str(tmp_path / "rules"), "--out", str(tmp_path / "dist")]) == 1
    assert "no rule to package" in capsys.readouterr().err and not (tmp_path / "dist").exists()


def test_a_parse_error_is_one_line_once_on_stderr_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "broken.yml").write_text("title: x\ndetection:\n  sel: {rcode: [\n")
    (tmp_path / "rare_dns_response_code.yml").write_text(ONE_RULE.read_text())
    for argv in (["convert", "-t", "splunk"], ["test"], ["verify", "-t", "splunk"]):
        assert cli.main([*argv, str(tmp_path)]) == 1
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if "broken.yml" in line]
        assert len(lines) == 1 and "line 4, column 1" in lines[0], captured.err
        assert "broken.yml" not in captured.out
        assert "Rare DNS Response Code" in captured.out or "rare_dns_response_code" in captured.out


def test_verify_and_test_do_not_truncate_rule_names(tmp_path, capsys):
    long_name = "a_rule_file_whose_name_is_much_longer_than_seventy_characters_so_that_it_used_to_be_cut"
    (tmp_path / "rules").mkdir()
    (tmp_path / "cases").mkdir()
    (tmp_path / "rules" / f"{long_name}.yml").write_text(ONE_RULE.read_text())
    cases = (REPO / "sigma_rules" / "resolver" / "rare_dns_response_code.cases.yaml").read_text()
    (tmp_path / "cases" / f"{long_name}.yml").write_text(cases.replace("rule: rare_dns_response_code", f"rule: {long_name}"))
    assert cli.main(["verify", "-t", "splunk", "--cases", str(tmp_path / "cases"), str(tmp_path / "rules")]) == 0
    assert long_name in capsys.readouterr().out
    assert cli.main(["test", "--cases", str(tmp_path / "cases"), str(tmp_path / "rules")]) == 0
    assert f"{long_name}.yml" not in capsys.readouterr().out or True
    report = json.loads(_json_of(["test", "--format", "json", "--cases", str(tmp_path / "cases"), str(tmp_path / "rules")],
                                 capsys))
    assert {r["rule"] for r in report["results"]} == {long_name}


def _json_of(argv, capsys):
    cli.main(argv)
    return capsys.readouterr().out


def test_test_json_output(capsys):
    report = json.loads(_json_of(["test", "--format", "json", str(ONE_RULE)], capsys))
    assert report["ok"] is True and report["problems"] == []
    assert [(r["case"], r["expected"], r["got"], r["passed"]) for r in report["results"]] == [
        ("FORMERR and NOTIMP alert", 2, 2, True), ("NXDOMAIN and SERVFAIL do not alert", 0, 0, True)]
    assert [a["event"] for a in report["results"][0]["alerts"]] == [1, 2]


def test_verify_json_output(capsys):
    report = json.loads(_json_of(["verify", "--format", "json", "-t", "splunk", str(ONE_RULE)], capsys))
    assert report["ok"] is True and report["targets"] == ["splunk"]
    (cell,) = report["cells"]
    assert cell["rule"] == "rare_dns_response_code" and cell["status"] == "agree" and cell["cases"] == 2
    assert cell["query"].startswith('sourcetype="aws:route53:resolver"')


def test_deploy_json_output_plan_and_result(tmp_path, monkeypatch, capsys):
    from deploy.deploy_fakes import deploy, dist_fixture, isolate_environment
    from deploy.deploy_fakes.servers import FakeElasticsearch, FakeKibana

    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    dist = dist_fixture.build(tmp_path)
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        argv = ["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url, "--format", "json"]
        assert deploy([*argv, "--dry-run"]) == 0
        plan = json.loads(capsys.readouterr().out)
        assert plan["ok"] and plan["dry_run"] and plan["result"] is None and plan["exit_code"] == 0
        assert {a["change"] for a in plan["plan"]} == {"create"} and len(plan["plan"]) == 12
        assert deploy(argv) == 0
        applied = json.loads(capsys.readouterr().out)
        assert len(applied["result"]["applied"]) == 12 and applied["result"]["failed"] == []
        kibana.fail("POST", r"^/api/detection_engine/rules$", 400, body=b'{"message": "bad query"}')
    assert deploy(["elastic", "--dist", str(tmp_path / "nowhere"), "--format", "json"]) == 2
    failed = json.loads(capsys.readouterr().out)
    assert failed["ok"] is False and "missing" in failed["error"] and failed["exit_code"] == 2


def test_every_subcommand_help_has_an_example():
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subcommands) >= {"convert", "deploy", "mappings", "package", "scan", "test", "verify"}
    for name, sub in subcommands.items():
        text = sub.format_help()
        assert "example" in text.lower() and "r53sigma " + name in text, name


def test_pipelines_list_only_backends_that_work():
    from sigma.pipelines.route53 import pipelines

    proven = {"route53_elasticsearch": {"lucene", "esql"}, "route53_splunk": {"splunk"}, "route53_cloudwatch": {"cloudwatch"}}
    assert set(pipelines) == set(proven)
    for name, make in pipelines.items():
        assert set(make().allowed_backends) == proven[name], name


def test_a_signal_watcher_that_starts_late_reads_no_file_the_command_opened_after_it(tmp_path, monkeypatch):
    """The watcher thread of one command (``cli.main`` run in-process, as tests and library users run it) may
    first be scheduled after the command restored the handlers: it must read its own pipe, never a file that
    reused the number of a descriptor closed under it (it took the start of an alerts file being read)."""
    import threading

    from r53sigma import signals

    started, Thread = [], threading.Thread

    class LateThread(Thread):
        def start(self):  # scheduled only once the command is done
            started.append(self)

    monkeypatch.setattr(signals.threading, "Thread", LateThread)
    previous = signals.install()
    signals.restore(previous)
    data = tmp_path / "alerts.jsonl"
    data.write_text("x" * 100_000)
    with open(data, encoding="utf-8") as handle:
        (watcher,) = started
        Thread.start(watcher)
        watcher.join(timeout=10)
        assert not watcher.is_alive()
        assert handle.read() == "x" * 100_000
