"""Fake SIEM servers, a dist/ fixture and a CLI runner for the deploy tests."""
from __future__ import annotations

import os

from r53sigma.cli import build_parser
from r53sigma.commands import deploy as deploy_command
from r53sigma.deploy.common import Retry


class Sleeps(list):
    """An injectable `sleep` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def isolate_environment(monkeypatch, home) -> None:
    """No R53SIGMA_* / AWS settings from the machine, no ~/.config file: each test says what it uses."""
    for key in list(os.environ):
        if key.startswith(("R53SIGMA_", "AWS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))


def deploy(argv: list[str], sleeps: Sleeps | None = None, targets: dict | None = None, attempts: int = 4) -> int:
    """`r53sigma deploy ...` in process, with instant retries and, optionally, prebuilt clients."""
    args = build_parser().parse_args(["deploy", *argv])
    retry = Retry(attempts=attempts, sleep=sleeps if sleeps is not None else Sleeps())
    return deploy_command.run(args, targets=targets, retry=retry)
