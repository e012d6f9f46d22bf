"""Connection settings: command-line flags, then R53SIGMA_* environment variables, then a config file.

The config file is TOML (default `~/.config/r53sigma/deploy.toml`, or `--config` / `R53SIGMA_CONFIG`),
one table per target, keys as below. For a key `api_key` of target `elastic`, the environment
variables `R53SIGMA_ELASTIC_API_KEY` and then `R53SIGMA_API_KEY` are read.

    [elastic]
    url = "https://es.example.org:9200"
    kibana_url = "https://kibana.example.org:5601"
    space = "security"            # Kibana space; omit for the default space
    api_key = "..."               # or username + password
    ca_certs = "/etc/ssl/corp-ca.pem"

    [splunk]
    url = "https://splunk.example.org:8089"
    token = "..."                 # a Splunk authentication token, or username + password
    app = "r53sigma_route53"

    [cloudwatch]
    region = "us-east-1"
    profile = "security-admin"    # credentials come from the AWS profile / default chain
    [cloudwatch.log_groups]
    resolver = "/aws/route53/resolver-query-logs"

Secrets (`api_key`, `password`, `token`) are never printed: `Settings` masks them in its repr, and
nothing here writes files. TLS certificates are verified unless `insecure = true` / `--insecure`.
"""
from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

SECRETS = frozenset({"api_key", "password", "token"})
BOOLEANS = frozenset({"insecure"})
DEFAULT_CONFIG = Path("~/.config/r53sigma/deploy.toml")
TRUE = {"1", "true", "yes", "on"}


class SettingsError(Exception):
    pass


@dataclass
class Settings:
    target: str
    values: dict[str, object] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # key -> where it came from, for messages

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def require(self, key: str, flag: str):
        value = self.values.get(key)
        if value in (None, ""):
            env = f"R53SIGMA_{self.target.upper()}_{key.upper()}"
            raise SettingsError(f"{self.target}: no {key} given: use {flag}, {env} or [{self.target}] {key} in the config file")
        return value

    @property
    def verify_tls(self) -> bool:
        return not self.values.get("insecure", False)

    def __repr__(self) -> str:
        shown = {k: ("***" if k in SECRETS else v) for k, v in self.values.items()}
        return f"Settings({self.target!r}, {shown})"


def _config_path(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    if explicit:
        return Path(explicit).expanduser(), True
    if environ.get("R53SIGMA_CONFIG"):
        return Path(environ["R53SIGMA_CONFIG"]).expanduser(), True
    return DEFAULT_CONFIG.expanduser(), False


def read_config(explicit: str | None, target: str, environ: Mapping[str, str]) -> dict:
    path, required = _config_path(explicit, environ)
    if not path.is_file():
        if required:
            raise SettingsError(f"config file not found: {path}")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"config file {path}: {error}") from None
    section = data.get(target, {})
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [{target}] must be a table")
    if any(k in SECRETS for k in section) and os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: {path} holds secrets and is readable by others (chmod 600 it)", file=sys.stderr)
    return section


def parse_pairs(text: str) -> dict[str, str]:
    """`resolver=/a,public_zone=/b` (the R53SIGMA_LOG_GROUPS form) -> dict."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SettingsError(f"expected SOURCE=LOG_GROUP, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def resolve(target: str, keys: list[str], flags: dict[str, object], config: str | None = None,
            environ: Mapping[str, str] | None = None) -> Settings:
    """Each key from the first place that has it: flag, target env var, generic env var, config file."""
    environ = os.environ if environ is None else environ
    section = read_config(config, target, environ)
    settings = Settings(target)
    for key in keys:
        candidates = [
            (flags.get(key), f"--{key.replace('_', '-')}"),
            (environ.get(f"R53SIGMA_{target.upper()}_{key.upper()}"), f"R53SIGMA_{target.upper()}_{key.upper()}"),
            (environ.get(f"R53SIGMA_{key.upper()}"), f"R53SIGMA_{key.upper()}"),
            (section.get(key), f"config [{target}] {key}"),
        ]
        for value, source in candidates:
            if value not in (None, "", {}, False):
                if key in BOOLEANS and isinstance(value, str):
                    value = value.strip().lower() in TRUE
                if key == "log_groups" and isinstance(value, str):
                    value = parse_pairs(value)
                settings.values[key] = value
                settings.sources[key] = source
                break
    return settings
