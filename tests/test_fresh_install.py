"""A fresh virtualenv with a plain `pip install .` (no extras) runs every `r53sigma` command the README
teaches without a traceback, in a folder of its own (nothing written into the virtualenv).

pip's cache is reused (the install takes well under a minute when warm); when the packages cannot be
installed at all here (no index, no cache), the test skips and says so.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

pytestmark = pytest.mark.fresh_install

SOURCE_PARTS = ["pyproject.toml", "README.md", "backends", "sigma_rules", "mappings/catalogue"]
OFFLINE_SIGNS = ("No matching distribution", "Could not find a version", "Failed to establish a new connection",
                 "Temporary failure in name resolution", "Network is unreachable", "ProxyError")
DEPLOY_HINT = "pip install 'r53sigma[deploy]'"


def readme_commands() -> list[str]:
    """Every `r53sigma ...` line of the README's code blocks and indented examples, as a user types it."""
    commands = []
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"^\s*(?:[A-Z0-9_]+=\S+\s+)*(?:\.venv/bin/)?(r53sigma\s.*)$", line)
        if not match:
            continue
        command = match.group(1).split("  #")[0].split(" # ")[0].strip()
        command = re.sub(r"\s*\[[^\]]*\]", "", command)  # optional parts written [--flag value]
        commands.append(command)
    return list(dict.fromkeys(commands))


def _copy_source(destination: Path) -> Path:
    for part in SOURCE_PARTS:
        source = REPO / part
        target = destination / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    source = _copy_source(root / "src")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the running environment's pip installs into the new one: no pip bootstrap, pip's cache shared
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=600)
    if install.returncode != 0:
        if any(sign in install.stdout + install.stderr for sign in OFFLINE_SIGNS):
            pytest.skip("cannot install the dependencies here (offline, no cached wheels): "
                        + (install.stderr.strip().splitlines() or ["?"])[-1])
        pytest.fail("pip install . failed:\n" + install.stdout + install.stderr)
    return venv


def _workspace(folder: Path) -> Path:
    """What the README's commands name: a rule file and folder, a rule under sigma_rules/, log folders."""
    one_rule = REPO / "sigma_rules" / "resolver" / "rare_dns_response_code.yml"
    samples = REPO / "backends" / "r53sigma" / "samples"
    (folder / "rules").mkdir(parents=True)
    shutil.copy2(one_rule, folder / "rules" / one_rule.name)
    shutil.copy2(one_rule, folder / "my_rule.yml")
    shutil.copytree(REPO / "sigma_rules", folder / "sigma_rules")
    my_rule = re.sub(r"(?m)^id: .*$", "id: 9a3c1f0e-0000-4000-8000-0000000000aa", one_rule.read_text())
    (folder / "sigma_rules" / "resolver" / "my_rule.yml").write_text(my_rule.replace("title: ", "title: My ", 1))
    cases = one_rule.with_name(one_rule.stem + ".cases.yaml").read_text()  # a user's rule keeps its cases beside it
    (folder / "sigma_rules" / "resolver" / "my_rule.cases.yaml").write_text(
        cases.replace("rule: rare_dns_response_code", "rule: my_rule"))
    shutil.copytree(samples, folder / "my_logs")
    shutil.copy2(REPO / "bench" / "anycompany_filter.yml", folder / "my_environment.yml")  # the README's filter file
    (folder / "pools.txt").write_text("pool.example\n")
    aws = folder / "AWSLogs" / "111122223333" / "vpcdnsquerylogs" / "vpc-0a1b2c3d" / "2024" / "05" / "01"
    aws.mkdir(parents=True)
    shutil.copy2(samples / "resolver_query_logs.jsonl", aws / "queries.log")
    shutil.copytree(REPO / "mappings", folder / "mappings")
    return folder


def test_the_readme_teaches_the_commands_this_test_runs():
    commands = readme_commands()
    for word in ("convert", "verify", "package", "deploy", "test", "scan", "mappings"):
        assert any(c.split()[1] == word for c in commands), word


def test_every_readme_command_runs_without_a_traceback_after_a_plain_install(fresh_venv, tmp_path):
    cwd = _workspace(tmp_path / "work")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("R53SIGMA_", "AWS_", "PYTHON"))}
    env.update(PATH=f"{fresh_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    before = {p for p in fresh_venv.rglob("*")}
    failures = []
    for command in readme_commands():
        argv = shlex.split(command)
        if argv[1] == "verify" and "-t" not in argv:
            argv += ["-t", "splunk"]  # one target keeps the run short; the others are the same code path
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL)
        err = result.stderr
        if "Traceback" in err or "Traceback" in result.stdout:
            failures.append(f"{command}: traceback\n{err[-2000:]}")
        elif argv[1] == "deploy":
            # no extras installed: a one-line hint, exit 2
            if result.returncode != 2 or DEPLOY_HINT not in err:
                failures.append(f"{command}: expected the deploy-extra hint, got {result.returncode}: {err[-500:]}")
        elif argv[1:3] == ["lists", "refresh"]:
            # rewrites the pack's own files: refused on an installed pack, with the reason
            if result.returncode != 2 or "never on the installed package" not in err:
                failures.append(f"{command}: expected the installed-pack refusal, got {result.returncode}: {err[-500:]}")
        elif argv[1] in ("test", "verify") and result.returncode != 0:
            # the pack's test cases must ship with the package, or the command must say --cases is needed
            if "--cases" not in err:
                failures.append(f"{command}: exit {result.returncode} without saying why: {err[-800:]}")
        elif result.returncode != 0:
            failures.append(f"{command}: exit {result.returncode}: {err[-800:]}")
    assert not failures, "\n\n".join(failures)
    assert (cwd / "dist" / "MANIFEST.json").is_file()  # package wrote where the user stands
    written = {p for p in fresh_venv.rglob("*")} - before
    assert not [p for p in written if "__pycache__" not in p.parts], "commands wrote into the virtualenv"
