"""`scan -o FILE`: an ordinary file (the umask decides its mode), and no temporary file left on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r53sigma import cli

SAMPLE = Path(cli.__file__).parent / "samples" / "resolver_query_logs.jsonl"


def test_scan_output_honours_the_umask(tmp_path):
    out = tmp_path / "alerts.jsonl"
    old = os.umask(0o022)
    try:
        assert cli.main(["scan", str(SAMPLE), "-o", str(out), "--no-progress"]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert out.read_text().count("\n") > 0


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_sigterm_leaves_no_temporary_file_and_no_output(engine, tmp_path):
    logs = tmp_path / "big.jsonl"
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    with logs.open("wb") as handle:
        for _ in range(1000):  # long enough that even the DuckDB engine is still scanning when signalled
            handle.writelines(lines)
    out = tmp_path / "out" / "alerts.jsonl"
    scan = subprocess.Popen([sys.executable, "-m", "r53sigma", "scan", str(logs), "-o", str(out), "--engine", engine],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and scan.poll() is None:
        if out.parent.is_dir() and any(out.parent.iterdir()):  # the temporary file exists: mid-scan
            break
        time.sleep(0.05)
    if scan.poll() is not None:
        pytest.fail(f"the scan finished before it could be interrupted: {scan.communicate()}")
    time.sleep(0.1)
    scan.send_signal(signal.SIGTERM)
    _, err = scan.communicate(timeout=300)
    assert scan.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_scan_output_in_an_unwritable_place_is_told_before_the_scan(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    assert cli.main(["scan", str(SAMPLE), "-o", str(a_file / "sub" / "alerts.jsonl"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "scanned" not in err and "Traceback" not in err
    assert a_file.read_text() == "mine"


def test_a_scan_that_scanned_nothing_keeps_the_previous_output(tmp_path, capsys):
    out = tmp_path / "alerts.jsonl"
    out.write_text("yesterday's alerts\n")
    (tmp_path / "bad.jsonl").write_text("not a log line\n")
    assert cli.main(["scan", str(tmp_path / "bad.jsonl"), "-o", str(out), "--no-progress"]) == 1
    assert out.read_text() == "yesterday's alerts\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "bad.jsonl"]
