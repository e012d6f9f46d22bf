"""The distribution ships every package under backends/ (the list in pyproject.toml is explicit)."""
import tomllib

from support import REPO


def test_every_python_package_under_backends_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    root = REPO / "backends"
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in root.rglob("*.py")
        if "__pycache__" not in init.parts and init.parent != root
    }
    namespace_only = {"sigma", "sigma.backends", "sigma.pipelines"}  # PEP 420: pySigma's plugin namespaces
    assert found - namespace_only <= listed, sorted(found - namespace_only - listed)
