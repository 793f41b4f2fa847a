"""A plain `pip install .` (no `-e`) carries the package data: the installed CLI finds
the device profiles and the demo configuration from a folder outside the repository.

The fresh environment borrows the test environment's third-party packages (torch,
setuptools, pip) through a `.pth` path line instead of reinstalling them. A path line
is appended to sys.path without running the `.pth` files inside it, so the editable
install of this repository in the test environment stays inactive there (pip sees its
metadata and leaves it alone: it lies outside the fresh environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("deploy", "lowering", "bench_runner", "vitdeploy")
# What the copy that pip builds from leaves out: environments, history, build
# leftovers and results; building in a copy keeps build/ and *.egg-info out of REPO.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "results", "tests"
)


@dataclass(frozen=True)
class FreshInstall:
    """A virtual environment in `root`/env holding a non-editable install of the repository."""

    root: Path

    @property
    def site_packages(self) -> Path:
        """The environment's own site-packages."""
        env = str(self.root / "env")
        return Path(sysconfig.get_path("purelib", vars={"base": env, "platbase": env}))

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """Run an executable of the environment's bin/ from `root`, outside the repository."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return subprocess.run(
            [str(self.root / "env" / "bin" / command[0]), *command[1:]],
            cwd=self.root, env=env, capture_output=True, text=True, timeout=120,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> FreshInstall:
    fresh = FreshInstall(tmp_path_factory.mktemp("wheel_install"))
    source = fresh.root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    venv.create(fresh.root / "env", with_pip=False)
    borrowed = dict.fromkeys((sysconfig.get_path("purelib"), sysconfig.get_path("platlib")))
    (fresh.site_packages / "test_environment.pth").write_text("\n".join(borrowed) + "\n")
    pip = fresh.run(
        "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--no-cache-dir", "--disable-pip-version-check", str(source),
    )
    assert pip.returncode == 0, pip.stderr
    return fresh


def test_packages_are_imported_from_the_installed_copy(installed):
    probe = installed.run("python", "-c", f"import json, {', '.join(PACKAGES)}; "
                          f"print(json.dumps([m.__file__ for m in ({', '.join(PACKAGES)})]))")
    assert probe.returncode == 0, probe.stderr
    for module_file in json.loads(probe.stdout):
        assert Path(module_file).resolve().is_relative_to(installed.site_packages.resolve()), module_file


def test_demo_config_is_package_data(installed):
    probe = installed.run("python", "-c", "import json, tomllib; from deploy.commands.demo import DEMO_CONFIG; "
                          "print(json.dumps([str(DEMO_CONFIG), DEMO_CONFIG.read_text()]))")
    assert probe.returncode == 0, probe.stderr
    path, text = json.loads(probe.stdout)
    assert Path(path).resolve().is_relative_to(installed.site_packages.resolve())
    assert tomllib.loads(text) == tomllib.loads((REPO / "deploy" / "configs" / "demo.toml").read_text())


def test_devices_lists_every_shipped_profile(installed):
    from bench_runner.profiles import load_profile, profile_paths

    shipped = {profile.name: profile for profile in map(load_profile, profile_paths())}
    devices = installed.run("vitdeploy", "devices", "--connect-timeout", "1")
    assert devices.returncode == 0, devices.stdout + devices.stderr
    listing = devices.stdout.split("\nProfiles in ", 1)[1].splitlines()[2:]
    assert {line.split()[0] for line in listing} == set(shipped)
    assert any(line.split()[:2] == ["host", "host"] and line.endswith(shipped["host"].description) for line in listing)


def test_models_lists_the_registry(installed):
    from lowering.models import count_params, create, list_models

    models = installed.run("vitdeploy", "models", "--img-size", "32", "--num-classes", "10")
    assert models.returncode == 0, models.stderr
    rows = {line.split()[0]: line.split()[1:] for line in models.stdout.splitlines()[1:]}
    assert set(rows) == set(list_models())
    deit_tiny = create("deit_tiny", img_size=32, num_classes=10)
    assert rows["deit_tiny"][:3] == ["registry", "32", f"{count_params(deit_tiny):,}"]
