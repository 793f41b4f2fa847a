"""Which package may import which: lowering and bench_runner meet only in vitdeploy and deploy."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package -> the first-party packages it must not import
FORBIDDEN = {
    "vitdeploy": {"lowering", "bench_runner", "deploy"},
    "lowering": {"bench_runner", "deploy"},
    "bench_runner": {"lowering", "deploy"},
}


def imported_packages(path: Path, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set()
    for node in tree.body if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_none_of_the_packages_it_must_not(package):
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_portable_runtimes_module_needs_only_the_standard_library_and_numpy_to_import():
    import sys

    allowed = set(sys.stdlib_module_names) | {"numpy"}
    assert imported_packages(ROOT / "vitdeploy" / "runtimes.py", module_level_only=True) - allowed == set()
