"""The package as users install it: `pip install .` builds a wheel; the wheel must hold every
module of the source tree and give a CLI that starts, lists the built-in tasks from the installed
copy and imports every module (a package list written by hand once shipped a CLI that could not
start)."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(built_wheel, installed_venv):
    """The session's wheel and the venv it is installed in (tests/conftest.py)."""
    return built_wheel, installed_venv.parent.parent


def source_modules() -> set[str]:
    found = {str(p.relative_to(REPO).with_suffix("")).replace(os.sep, ".")
             for p in (REPO / "fleet").rglob("*.py")}
    # the built-in tasks' folder is installed as the package fleet.tasks
    found |= {f"fleet.tasks.{p.stem}" for p in (REPO / "tasks").glob("*.py")}
    return found


def test_the_wheel_holds_every_module_of_the_tree(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name[:-3].replace("/", ".") for name in archive.namelist()
                   if name.endswith(".py")}
    missing = source_modules() - shipped
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert not any(name.startswith("tasks.") for name in shipped)  # no top-level `tasks` package


def test_the_installed_cli_starts_and_runs_from_the_installed_copy(installed, tmp_path):
    _, venv = installed
    env = {**os.environ, "PYTHONPATH": ""}
    helped = subprocess.run([str(venv / "bin" / "fleet"), "--help"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=60)
    assert helped.returncode == 0 and "usage: fleet" in helped.stdout, helped.stderr
    listed = subprocess.run([str(venv / "bin" / "fleet"), "tasks"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for task in ("setup", "mesh", "teardown"):
        line = next(line for line in listed.stdout.splitlines() if line.startswith(task + " "))
        assert str(venv) in line, line  # the wheel's copy, not this source tree's
    check = (f"import importlib, pkgutil, fleet\n"
             f"names = [m.name for m in pkgutil.walk_packages(fleet.__path__, 'fleet.')\n"
             f"         if not m.name.endswith('__main__')]\n"
             f"for name in names: importlib.import_module(name)\n"
             f"assert fleet.__file__.startswith({str(venv)!r}), fleet.__file__\n"
             f"print(len(names))")
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert imported.returncode == 0, imported.stderr
    # fleet itself is not walked, and fleet.__main__ runs the CLI when imported
    assert int(imported.stdout) >= len(source_modules()) - 2


def test_the_wheel_registers_the_builtin_tasks_by_entry_point(installed, tmp_path):
    wheel, venv = installed
    with zipfile.ZipFile(wheel) as archive:
        for name in ("setup", "mesh", "teardown"):
            assert archive.read(f"fleet/tasks/{name}.py") == (REPO / "tasks" / f"{name}.py").read_bytes()
    check = ("from importlib.metadata import entry_points\n"
             "from fleet.catalog import builtin_tasks\n"
             "points = {e.name: e.value for e in entry_points(group='fleet.tasks')}\n"
             "print(sorted(points.items()) == sorted(builtin_tasks().items()), sorted(points))\n"
             "import fleet.tasks.mesh\n"
             "print(fleet.tasks.mesh.__file__)\n")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, timeout=60)
    assert done.returncode == 0, done.stderr
    same, where = done.stdout.splitlines()
    assert same == "True ['mesh', 'setup', 'teardown']"
    assert where.startswith(str(venv)) and where.endswith("fleet/tasks/mesh.py")


def test_the_installed_fleet_run_in_a_clone_of_the_repository_sees_tasks_as_its_own(installed):
    # A clone's tasks/ holds the same text as the installed built-ins: not a shadow to warn about
    _, venv = installed
    done = subprocess.run([str(venv / "bin" / "fleet"), "tasks"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": ""}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ignored" not in done.stderr and "overrides" not in done.stderr, done.stderr
    assert done.stdout.count(str(venv)) == 3, done.stdout  # the installed copies run
