"""The target registry: every package under r53sigma/targets/ that exports a ``TARGET``
(:class:`r53sigma.targets.spec.Target`), plus targets installed elsewhere.

convert, verify, package, mappings and deploy iterate this registry, and the CLI's choices come from
it, so adding a target is one new package (plus its catalogue entries). Targets outside this
package join through the ``r53sigma.targets`` entry-point group or the ``R53SIGMA_TARGETS``
environment variable (comma-separated module names), each module exporting ``TARGET``.
"""
from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from importlib.metadata import entry_points

from r53sigma import targets as targets_package
from r53sigma.targets.spec import Target

ENTRY_POINT_GROUP = "r53sigma.targets"
ENVIRONMENT = "R53SIGMA_TARGETS"


def _modules():
    for info in pkgutil.iter_modules(targets_package.__path__):
        if info.ispkg:
            yield importlib.import_module(f"{targets_package.__name__}.{info.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        yield entry.load()
    for name in filter(None, (n.strip() for n in os.environ.get(ENVIRONMENT, "").split(","))):
        yield importlib.import_module(name)


@functools.cache
def _registry(environment: str) -> dict[str, Target]:
    # a module exports TARGET, and may export further targets of its room in TARGETS
    found = [t for m in _modules() for t in (getattr(m, "TARGET", None), *getattr(m, "TARGETS", ())) if isinstance(t, Target)]
    found = list({id(t): t for t in found}.values())
    return {t.name: t for t in sorted(found, key=lambda t: (t.order, t.name))}


def all_targets() -> dict[str, Target]:
    """Name -> target, in their declared order."""
    return _registry(os.environ.get(ENVIRONMENT, ""))


def get(name: str) -> Target:
    return all_targets()[name]


def names() -> tuple[str, ...]:
    return tuple(all_targets())


def siem_names() -> tuple[str, ...]:
    """The targets `--target all`, verify and package cover."""
    return tuple(name for name, t in all_targets().items() if t.siem)


def deployable() -> dict[str, Target]:
    """`r53sigma deploy` name -> target."""
    return {t.deploy_name: t for t in all_targets().values() if t.deployer and t.deploy_name}


def clear() -> None:
    """Forget discovered targets (tests that add one)."""
    _registry.cache_clear()
